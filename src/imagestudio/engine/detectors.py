"""Control maps made by a detector model: depth, with transformers' ``depth-estimation`` pipeline.

Runs inside the job (the manager's lock is held, the diffusion pipeline resident): the detector is
loaded on the job's device, makes the map and is dropped before the ControlNet runs, so it never sits
beside the transformer while it denoises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.config import Settings


def require_map_detector(settings: Settings, model_id: str, control_type: str) -> None:
    """Refuse, before any model loads, a control type whose detector is not on this machine."""
    from imagestudio.engine.control import MODEL_DETECTED
    from imagestudio.models.detectors import require_detector
    from imagestudio.registry import detector_for

    spec = detector_for(control_type, model_id) if control_type in MODEL_DETECTED else None
    if spec is not None:
        require_detector(spec, settings)


def depth_map(settings: Settings, model_id: str, device: str, picture: Image.Image) -> Image.Image:
    """The relative depth of ``picture`` (near = bright), as an RGB map of its size."""
    from transformers import pipeline

    from imagestudio.engine.manager import free_memory
    from imagestudio.models.detectors import require_detector
    from imagestudio.registry import detector_for

    spec = detector_for("depth", model_id)
    assert spec is not None, "every model with a ControlNet has a depth detector"
    folder = require_detector(spec, settings)
    estimator = pipeline("depth-estimation", model=str(folder), device=device)
    try:
        depth = estimator(picture)["depth"]
    finally:
        del estimator
        free_memory()
    map_image: Image.Image = depth.convert("RGB").resize(picture.size)
    return map_image
