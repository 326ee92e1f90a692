"""An upscale job: find the upscaler's file, plan its tiles, run it beside the resident pipeline.

The upscaler is small (tens of MB) and lives only for its job: it is loaded while the model manager's
lock is held, so it never runs at the same time as a pipeline or a model switch on the accelerator, and
dropped afterwards. The resident diffusion model stays where it is (its plan already left headroom);
the tile is sized to the accelerator memory free at that moment.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from imagestudio.engine.pipeline_calls import StepProgress

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.config import Settings
    from imagestudio.engine.manager import ModelManager
    from imagestudio.engine.pipeline_calls import ProgressCallback
    from imagestudio.job_requests import UpscaleRequest
    from imagestudio.memory.upscale import UpscalePlan
    from imagestudio.registry import UpscalerSpec

log = logging.getLogger(__name__)


def upscale_with(
    settings: Settings,
    device: str,
    spec: UpscalerSpec,
    image: Image.Image,
    scale: float,
    *,
    tile: int | None = None,
    on_step: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Image.Image, UpscalePlan, dict[str, Any]]:
    """``image`` enlarged by ``spec`` (call with the manager's lock held); the plan and what to record."""
    from imagestudio.engine.manager import free_memory
    from imagestudio.engine.upscale import compute_dtype, load_upscaler, upscale_image
    from imagestudio.hardware import free_accelerator_bytes
    from imagestudio.memory.upscale import plan_upscale
    from imagestudio.models.upscalers import require_upscaler_file

    path = require_upscaler_file(spec, settings)
    started = time.perf_counter()
    model = load_upscaler(path, device)
    try:
        dtype = compute_dtype(model, device)
        plan = plan_upscale(
            free_bytes=free_accelerator_bytes(device),
            scale=int(model.scale),
            dtype_bytes=dtype.itemsize,
            out_width=round(image.width * scale),
            out_height=round(image.height * scale),
            tile=tile or settings.upscale.tile_px,
        )
        log.info(
            "upscaling %dx%d x%g with %s: %s", image.width, image.height, scale, spec.id, plan.describe()
        )

        def on_tile(done: int, total: int) -> None:
            if on_step is not None:
                on_step(StepProgress(image=1, images=1, step=done, steps=total))

        result = upscale_image(model, image, scale, plan, device=device, on_tile=on_tile, cancel=cancel)
        fields = {
            "upscaler_name": spec.title,
            "upscaler_architecture": model.architecture.name,
            "upscaler_scale": int(model.scale),
            "upscaler_seconds": round(time.perf_counter() - started, 3),
        }
    finally:
        del model
        free_memory()
    return result, plan, fields


def run_upscale(
    settings: Settings,
    manager: ModelManager,
    request: UpscaleRequest,
    *,
    on_step: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Image.Image, dict[str, Any]]:
    """Run a resolved upscale request; returns the picture and its metadata fields."""
    from imagestudio.registry import get_upscaler

    spec = get_upscaler(request.model)
    with manager.hold():
        image, plan, fields = upscale_with(
            settings,
            manager.device,
            spec,
            request.image.image,
            request.scale,
            tile=request.tile,
            on_step=on_step,
            cancel=cancel,
        )
    return image, {**fields, "device": manager.device, "plan": plan.describe()}
