"""What the System page shows, gathered from the running services as plain values.

Every probe here is cheap (no model is loaded, nothing is downloaded) so the page can refresh freely.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagestudio.services import Services

log = logging.getLogger(__name__)


def system_info(services: Services) -> dict[str, Any]:
    import psutil

    manager = services.studio.manager
    device = manager.device
    ram = psutil.virtual_memory()
    info: dict[str, Any] = {
        "device": device,
        "accelerator": _accelerator(device),
        "ram": {"total_bytes": ram.total, "available_bytes": ram.available},
        "loaded_model": _resident(manager),
        "plan": None,
        "checks": None,
        "models": _models(services),
    }
    return info


def _accelerator(device: str) -> dict[str, Any] | None:
    if not device.startswith("cuda"):
        return None
    import torch

    free, total = torch.cuda.mem_get_info()
    return {
        "name": torch.cuda.get_device_name(),
        "total_bytes": total,
        "free_bytes": free,
        "allocated_bytes": torch.cuda.memory_allocated(),
    }


def _resident(manager: Any) -> dict[str, Any] | None:
    resident = manager.resident
    if resident is None:
        return None
    return {
        "id": resident.spec.id,
        "device": resident.device,
        "placement": resident.placement,
        "dtype": resident.dtype,
        "load_seconds": round(resident.load_seconds, 1),
    }


def _models(services: Services) -> list[dict[str, Any]]:
    from imagestudio.models.state import list_states

    return [state.as_json() for state in list_states(services.settings)]
