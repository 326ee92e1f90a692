"""Pipeline calls: one request → diffusers pipeline calls (one per image) → checked PIL images.

This module knows each pipeline's arguments, reports progress once per step, honours cancellation
between steps and refuses to hand back NaN or all-black images.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagestudio.errors import BadOutput, JobCancelled

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from imagestudio.job_requests import EditRequest, GenerateRequest
    from imagestudio.models.pipeline import Pipeline

#: Highest value (0..1) an image may reach and still count as all black.
BLACK_LEVEL = 1.5 / 255


@dataclass(frozen=True)
class StepProgress:
    """Sent after every denoising step: image ``image`` of ``images``, step ``step`` of ``steps``."""

    image: int
    images: int
    step: int
    steps: int
    #: The current latents (for previews); only read by whoever wants them.
    latents: Any = None
    #: The output image's size in pixels when the call knows it (a preview unpacks packed latents by it).
    width: int | None = None
    height: int | None = None

    @property
    def fraction(self) -> float:
        return ((self.image - 1) * self.steps + self.step) / (self.images * self.steps)


ProgressCallback = Callable[[StepProgress], None]


@dataclass(frozen=True)
class CheckedImage:
    """One image a pipeline call produced and :func:`check_output` accepted, with its seed."""

    image: Image.Image
    seed: int


def check_output(array: np.ndarray, dtype: str) -> None:
    """Raise :class:`BadOutput` for NaN/inf or all-black pixels, naming the likely cause."""
    import numpy as np

    hint = (
        "the pipeline ran in float16, which overflows in these models: set torch_dtype: bfloat16"
        if dtype == "float16"
        else "numerical overflow; try bfloat16 weights, a smaller size, or fewer LoRAs"
    )
    # The codes tell the UI which advice to give in the reader's language.
    fp16 = dtype == "float16"
    if not np.isfinite(array).all():
        raise BadOutput(
            f"the model produced NaN/inf values instead of an image ({hint})",
            code="output_nan_fp16" if fp16 else "output_nan",
        )
    if float(array.max()) <= BLACK_LEVEL:
        raise BadOutput(
            f"the model produced an all-black image ({hint})",
            code="output_black_fp16" if fp16 else "output_black",
        )


def _step_callback(
    on_step: ProgressCallback | None,
    cancel: threading.Event | None,
    image: int,
    images: int,
    steps: int,
    size: tuple[int | None, int | None] = (None, None),
) -> Callable[..., dict[str, Any]]:
    def callback(pipe: Any, index: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_step is not None:
            on_step(StepProgress(image, images, index + 1, steps, kwargs.get("latents"), *size))
        if cancel is not None and cancel.is_set():
            # diffusers skips the remaining steps but still decodes; the caller discards that image.
            pipe._interrupt = True
        return kwargs

    return callback


def generator_for(seed: int) -> Any:
    """A CPU generator: the same seed gives the same noise on every device and every run."""
    import torch

    return torch.Generator("cpu").manual_seed(seed)


def run_pipeline(
    pipe: Pipeline,
    call_kwargs: dict[str, Any],
    seeds: list[int],
    steps: int,
    dtype: str,
    on_step: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    *,
    call: Callable[..., Any] | None = None,
    progress_steps: int | None = None,
) -> list[CheckedImage]:
    """Call ``pipe`` once per seed (each image reproducible on its own), checking every output.

    ``call`` replaces ``pipe(...)`` (an edit's reference-area call); ``progress_steps`` is the
    number of steps that actually run when it differs from ``steps`` (img2img runs ~strength x steps).
    """
    results: list[CheckedImage] = []
    invoke = call or pipe
    shown_steps = progress_steps or steps
    for number, seed in enumerate(seeds, start=1):
        if cancel is not None and cancel.is_set():
            raise JobCancelled("cancelled")
        output = invoke(
            **call_kwargs,
            num_inference_steps=steps,
            generator=generator_for(seed),
            output_type="np",
            callback_on_step_end=_step_callback(
                on_step,
                cancel,
                number,
                len(seeds),
                shown_steps,
                (call_kwargs.get("width"), call_kwargs.get("height")),
            ),
        )
        if cancel is not None and cancel.is_set():
            raise JobCancelled("cancelled")
        array = output.images[0]
        check_output(array, dtype)
        results.append(CheckedImage(pipe.numpy_to_pil(array[None])[0], seed))
    return results


def generate_kwargs(request: GenerateRequest) -> dict[str, Any]:
    """The ZImagePipeline arguments for a resolved request (steps, seed and callback added by the caller).

    For img2img/inpaint the init image and mask are resized to the output size here: the Z-Image
    img2img/inpaint pipelines encode the init image at its own size and fail when it differs from
    ``width`` x ``height``.
    """
    kwargs: dict[str, Any] = {
        "prompt": request.prompt,
        "height": request.height,
        "width": request.width,
        "guidance_scale": request.guidance_scale,
    }
    if request.init_image is not None:
        from PIL import Image

        size = (request.width or 0, request.height or 0)
        kwargs["image"] = _resized(request.init_image.image, size, Image.Resampling.LANCZOS)
        kwargs["strength"] = request.strength
        if request.mask is not None:
            # Bilinear edges, then the pipeline binarises at 0.5: white (repaint) vs black (keep).
            kwargs["mask_image"] = _resized(request.mask.image, size, Image.Resampling.BILINEAR)
    return kwargs


def _resized(image: Image.Image, size: tuple[int, int], method: Any) -> Image.Image:
    return image if image.size == size else image.resize(size, method)


def image_pipeline(pipe: Pipeline, request: GenerateRequest) -> Pipeline:
    """The pipeline that runs ``request``: ``pipe`` itself for text-to-image, else an img2img or inpaint
    pipeline over the same components (see :func:`derived_pipeline`)."""
    if request.init_image is None:
        return pipe
    import diffusers

    name = "ZImageInpaintPipeline" if request.mask is not None else "ZImageImg2ImgPipeline"
    return derived_pipeline(getattr(diffusers, name), pipe)


def derived_pipeline(pipeline_class: Callable[..., Pipeline], pipe: Pipeline) -> Pipeline:
    """A ``pipeline_class`` built from ``pipe``'s very component objects: no second copy of any weight.

    This is what ``DiffusionPipeline.from_pipe`` does, minus its final ``.to(dtype)``: ``from_pipe`` casts
    the shared modules to its ``dtype`` argument, float32 by default, which would silently turn the
    loaded bf16 weights into float32 (twice the memory, other pixels) for the text-to-image pipeline too,
    and would undo any storage-dtype casting a memory plan applied. Only the scheduler is new (built from
    the same config): img2img moves its begin index, and the text-to-image pipeline must not inherit that.
    """
    components = dict(pipe.components)
    components["scheduler"] = type(pipe.scheduler).from_config(pipe.scheduler.config)
    derived = pipeline_class(**components)
    derived.set_progress_bar_config(disable=True)
    return derived


def edit_kwargs(request: EditRequest) -> dict[str, Any]:
    """The QwenImageEditPlusPipeline arguments for a resolved request.

    Width and height are always passed (resolved up front, multiples of 16), so the pipeline never
    rounds them silently. No negative prompt is passed when true CFG is off (<= 1): the pipeline would
    only warn that it ignores it.
    """
    return {
        "image": [item.image for item in request.images],
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "true_cfg_scale": request.true_cfg_scale,
        "height": request.height,
        "width": request.width,
    }
