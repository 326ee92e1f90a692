"""A generation steered by a control image: map → ControlNet pipeline over the lent model → images."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from imagestudio.engine.control import (
    control_call,
    control_map,
    control_pipeline,
    control_window,
    img2img_call,
    lent_controlnet,
    map_hash,
)
from imagestudio.engine.pipeline_calls import CheckedImage, generate_kwargs, run_pipeline

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.engine.manager import LoadedModel
    from imagestudio.engine.pipeline_calls import ProgressCallback
    from imagestudio.job_requests import GenerateRequest


def run_controlled(
    settings: Settings,
    loaded: LoadedModel,
    request: GenerateRequest,
    *,
    on_step: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[CheckedImage], dict[str, Any]]:
    """Text-to-image, img2img or inpainting under ``request.control``; the images and their record.

    The inpaint ControlNet pipeline repaints the masked part completely (it has no strength), so the
    request's strength is not passed to it; img2img runs the text-to-image ControlNet pipeline from the
    re-noised start picture (see :func:`~imagestudio.engine.control.img2img_call`).
    """
    control = request.control
    assert control is not None and request.width and request.height and request.steps
    from imagestudio.engine.detectors import model_map

    def detect(picture: Any) -> Any:
        return model_map(settings, loaded.spec.id, loaded.device, control.type, picture)

    picture = control_map(control, request.width, request.height, detect)
    controlnet = lent_controlnet(settings, loaded)
    inpaint = request.mask is not None
    pipe = control_pipeline(loaded.pipe, controlnet, inpaint=inpaint)
    kwargs = generate_kwargs(request)
    weight = control.weight if control.weight is not None else 0.0
    steps = request.steps
    call = control_call(pipe, picture, weight)
    if request.mode == "img2img":
        start, strength = kwargs.pop("image"), kwargs.pop("strength")
        call = img2img_call(pipe, picture, weight, start, strength, request.steps)
        steps = request.denoising_steps()  # the ControlNet runs once per step that runs
    kwargs.pop("strength", None)
    with control_window(controlnet, steps, control.start, control.end):
        images = run_pipeline(
            pipe,
            kwargs,
            request.seeds(),
            steps=request.steps,
            dtype=loaded.dtype,
            on_step=on_step,
            cancel=cancel,
            call=call,
            progress_steps=steps,
        )
    from imagestudio.registry import controlnet_for

    spec = controlnet_for(loaded.spec.id)
    record = {"control_map_sha256": map_hash(picture), "control_model": spec.id if spec else None}
    return images, record
