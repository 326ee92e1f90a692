"""What the System page shows, gathered from the running services as plain values.

Nothing here loads or downloads a model. The doctor's model sizing reads stored configs on the meta
device (a few seconds the first time, cached after), so the page can refresh freely.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.hardware import Hardware
    from imagestudio.services import LoadedModelStatus, Services

log = logging.getLogger(__name__)

#: What the page shows of a memory plan (the rest is in ``imagestudio doctor --json``).
PLAN_FIELDS = (
    "profile",
    "weights",
    "vae_tiling",
    "attention_backend",
    "predicted_peak_vram_gb",
    "predicted_peak_ram_gb",
    "vram_budget_gb",
    "ram_budget_gb",
)


def system_info(services: Services) -> dict[str, Any]:
    from imagestudio.hardware import probe_hardware

    settings = services.settings
    device = services.device()
    loaded = services.loaded()
    hardware = probe_hardware(settings.device.type, settings.models_dir)
    return {
        "device": device,
        "accelerator": _accelerator(hardware),
        "ram": {"total_bytes": hardware.ram_total, "available_bytes": hardware.ram_available},
        "loaded_model": _resident(loaded),
        "plan": _plan(loaded),
        "checks": _checks(settings),
        "models": _models(services),
        "workers": workers(services.queue),
    }


def workers(queue: object) -> list[dict[str, Any]]:
    """The cluster's GPU workers as plain values; the in-process queue has none."""
    from dataclasses import asdict, is_dataclass

    from imagestudio.jobs.queue_protocol import WorkerListing

    if not isinstance(queue, WorkerListing):
        return []
    return [
        asdict(status) if is_dataclass(status) and not isinstance(status, type) else dict(vars(status))
        for status in queue.workers()
    ]


def _accelerator(hardware: Hardware) -> dict[str, Any] | None:
    if hardware.accelerator == "cpu":
        return None
    return {"name": hardware.name, "total_bytes": hardware.vram_total, "free_bytes": hardware.vram_free}


def _resident(resident: LoadedModelStatus | None) -> dict[str, Any] | None:
    if resident is None:
        return None
    return {
        "id": resident.id,
        "device": resident.device,
        "placement": resident.placement,
        "dtype": resident.dtype,
        "load_seconds": round(resident.load_seconds, 1),
    }


def _plan(resident: LoadedModelStatus | None) -> dict[str, Any] | None:
    plan = resident.plan if resident is not None else None
    if plan is None:
        return None
    values = plan.as_dict()
    # What the page needs to say the plan in the reader's language (see system_page.plan_words).
    words = {
        "accelerator": plan.accelerator,
        "attention": plan.attention_backend,
        "pinned_on_the_fly": plan.pinned_on_the_fly,
    }
    return {
        "plan": plan.describe(),
        **{key: values.get(key) for key in PLAN_FIELDS},
        "weights": plan.stored_weights,
        **words,
    }


def _checks(settings: Settings) -> list[dict[str, Any]] | None:
    """The doctor's checks, then one line per real model: will it fit here, and how.

    Each row keeps the check's code and details beside its English message: the page shows it in the
    reader's language from those.
    """
    from imagestudio.doctor import plan_check, run_doctor

    try:
        report = run_doctor(settings)
    except Exception:
        log.warning("the configuration check failed", exc_info=True)
        return None
    checks = [*report.checks]
    for entry in report.models:
        checks += [plan_check(entry.plan), *entry.extras]
    return [
        {"name": c.name, "status": c.status, "message": c.message, "code": c.code, "details": dict(c.details)}
        for c in checks
    ]


def _models(services: Services) -> list[dict[str, Any]]:
    """Every model's state, with its weight variants (state and download size each)."""
    from imagestudio.memory.variant_sizes import variant_listing
    from imagestudio.models.state import list_states
    from imagestudio.registry import get_model

    settings = services.settings
    return [
        {**state.as_json(), "variants": variant_listing(get_model(state.id), settings)}
        for state in list_states(settings)
    ]
