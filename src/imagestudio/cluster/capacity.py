"""What one box can run: its memory and the plan each model would get there (the doctor's planner).

A worker describes itself with these when it joins; the head never sends a model to a box whose plan
for it does not fit, and of two idle boxes that can run a model it prefers the one whose plan is the
fastest (:attr:`ModelFit.cost`). The plans come from :class:`~imagestudio.memory.planner.MemoryPlanner`,
the same one ``imagestudio doctor`` prints, so whatever it learns (new weight variants, offload
profiles) reaches the scheduler without changes here.

``imagestudio worker --simulate-vram/--simulate-ram`` makes a box plan (and so be scheduled) as if it
had that card and RAM, as ``doctor`` does; its jobs still run on its real device.
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


def memory_summary(hardware: Hardware) -> dict[str, Any]:
    """The box's memory as /api/system shows it."""
    shown = hardware.as_dict()
    return {
        key: shown[key]
        for key in ("accelerator", "name", "vram_total_gb", "vram_free_gb", "ram_total_gb", "simulated")
    }
