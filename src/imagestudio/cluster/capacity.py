"""What one box can run: its memory and the plan each model would get there (the doctor's planner).

A worker describes itself with these when it joins; the head never sends a model to a box whose plan
for it does not fit, and of two idle boxes that can run a model it prefers the one whose plan is the
fastest (:attr:`ModelFit.cost`). The plans come from :class:`~imagestudio.memory.planner.MemoryPlanner`,
the same one ``imagestudio doctor`` prints, so whatever it learns (new weight variants, offload
profiles) reaches the scheduler without changes here.

``imagestudio worker --simulate-vram/--simulate-ram`` makes a box plan (and so be scheduled) as if it
had that card and RAM, as ``doctor`` does; its jobs still run on its real device.

Upscalers are described too (:func:`box_upscalers`): an upscale job runs beside whatever model the box
holds, so it needs the ``upscale`` extra, the upscaler's file and room on the box for the upscaler with
its smallest tile (what the hires pass's plan counts, :func:`~imagestudio.memory.extras.upscaler_bytes`);
the tile itself is sized to what is free when the job runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagestudio.memory.plan import PROFILES

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.hardware import Hardware
    from imagestudio.memory.plan import MemoryPlan

log = logging.getLogger(__name__)

#: Set on a box by ``imagestudio worker --simulate-vram/--simulate-ram`` as ``VRAM_GB,RAM_GB`` (either
#: may be empty); read by the worker actors, which inherit the box's environment.
SIMULATE_ENV = "IMAGESTUDIO_WORKER_SIMULATE"


@dataclass(frozen=True)
class ModelFit:
    """One model's plan on one box, as the head needs it."""

    model: str
    fits: bool
    #: ``full, bf16 weights`` — or why it does not fit.
    plan: str
    predicted_peak_vram_gb: float
    predicted_peak_ram_gb: float
    #: Lower runs faster: weights moved over the bus per image, then the offload profile's rank.
    cost: tuple[float, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "fits": self.fits,
            "plan": self.plan,
            "predicted_peak_vram_gb": self.predicted_peak_vram_gb,
            "predicted_peak_ram_gb": self.predicted_peak_ram_gb,
        }


@dataclass(frozen=True)
class UpscalerFit:
    """Whether one upscaler can run on one box, and why not."""

    upscaler: str
    fits: bool
    #: ``needs ~0.05 GB (weights + smallest tile), 7.50 GB of card memory usable``, or why it cannot run.
    plan: str
    predicted_peak_gb: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "upscaler": self.upscaler,
            "fits": self.fits,
            "plan": self.plan,
            "predicted_peak_gb": self.predicted_peak_gb,
        }


def model_fit(plan: MemoryPlan) -> ModelFit:
    if plan.fits:
        said = plan.describe()
    else:
        budget = f"{plan.vram_budget_gb:g} GB" if plan.vram_budget_gb is not None else "no card"
        said = (
            f"does not fit: needs {plan.predicted_peak_vram_gb:g} GB of card memory ({budget} usable) and "
            f"{plan.predicted_peak_ram_gb:g} GB of RAM ({plan.ram_budget_gb:g} GB usable)"
        )
    return ModelFit(
        model=plan.model_id,
        fits=plan.fits,
        plan=said,
        predicted_peak_vram_gb=plan.predicted_peak_vram_gb,
        predicted_peak_ram_gb=plan.predicted_peak_ram_gb,
        cost=(round(plan.transfer_gb_per_image, 3), PROFILES.index(plan.profile)),
    )


def parse_simulation(value: str | None) -> tuple[float | None, float | None]:
    """``"8,32"`` → (8.0, 32.0); ``",16"`` → (None, 16.0); unset → (None, None)."""
    if not value:
        return None, None
    vram, _, ram = value.partition(",")
    return (float(vram) if vram else None), (float(ram) if ram else None)


def box_hardware(settings: Settings, simulate: str | None) -> Hardware:
    """This box as probed, or as ``--simulate-vram/--simulate-ram`` describe it."""
    from imagestudio.hardware import probe_hardware, simulate_hardware

    vram_gb, ram_gb = parse_simulation(simulate)
    # As in the doctor: a simulated card is a CUDA card, whatever device the box's config asks for.
    probed = probe_hardware("auto" if vram_gb is not None else settings.device.type, settings.models_dir)
    if vram_gb is None and ram_gb is None:
        return probed
    return simulate_hardware(probed, vram_gb, ram_gb)


def box_plans(
    settings: Settings, hardware: Hardware, device: str, model_ids: tuple[str, ...]
) -> tuple[ModelFit, ...]:
    """The plan each of ``model_ids`` (those on this box's disk) gets on ``hardware``."""
    from imagestudio.memory.planner import MemoryPlanner
    from imagestudio.registry import get_model

    planner = MemoryPlanner(settings, hardware=hardware, device=device)
    fits = []
    for model_id in model_ids:
        try:
            fits.append(model_fit(planner.plan(get_model(model_id))))
        except Exception as exc:  # noqa: BLE001 - a model the planner cannot size is not offered
            log.warning("could not plan %s on this box: %s", model_id, exc)
            fits.append(ModelFit(model_id, False, f"could not be planned: {exc}", 0.0, 0.0, (0.0, 0)))
    return tuple(fits)


def box_upscalers(settings: Settings, hardware: Hardware) -> tuple[UpscalerFit, ...]:
    """Each known upscaler on this box: runnable, or the one line saying why not (the extra is missing, the
    file is not on its disk, or its weights and smallest tile do not fit the card or RAM)."""
    from imagestudio.hardware import GIB
    from imagestudio.memory.extras import UPSCALER_FILE_DTYPE_BYTES, upscaler_bytes
    from imagestudio.models.upscalers import (
        find_upscaler_file,
        missing_upscale_module,
        upscale_extra_missing,
    )
    from imagestudio.registry import UPSCALERS

    missing = missing_upscale_module()
    if missing is not None:
        said = upscale_extra_missing(missing).message
        return tuple(UpscalerFit(spec.id, False, said) for spec in UPSCALERS.values())
    on_card = hardware.accelerator != "cpu"
    budget = (
        hardware.vram_free / GIB - settings.device.vram_reserve_gb
        if on_card
        else hardware.ram_available / GIB
    )
    where = "card memory" if on_card else "RAM"
    fits = []
    for spec in UPSCALERS.values():
        try:
            on_disk = spec.tiny or find_upscaler_file(spec, settings, build_tiny=False) is not None
        except OSError as exc:  # an unreadable cache must not keep the box from joining
            fits.append(UpscalerFit(spec.id, False, f"its file could not be looked for: {exc}"))
            continue
        if not on_disk:
            said = f"not on this box's disk (imagestudio models download {spec.id})"
            fits.append(UpscalerFit(spec.id, False, said))
            continue
        # Counted at the file's precision (fp32): on a card it may run in bf16, at half of this.
        need = upscaler_bytes(spec, UPSCALER_FILE_DTYPE_BYTES) / GIB
        fit = need <= budget
        said = f"needs ~{need:.2f} GB (weights + smallest tile), {max(budget, 0.0):.2f} GB of {where} usable"
        fits.append(UpscalerFit(spec.id, fit, said if fit else f"does not fit: {said}", round(need, 3)))
    return tuple(fits)


def memory_summary(hardware: Hardware) -> dict[str, Any]:
    """The box's memory as /api/system shows it."""
    shown = hardware.as_dict()
    return {
        key: shown[key]
        for key in ("accelerator", "name", "vram_total_gb", "vram_free_gb", "ram_total_gb", "simulated")
    }
