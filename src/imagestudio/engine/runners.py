"""Runners: one request → diffusers pipeline calls → checked PIL images.

A runner knows its pipeline's arguments, reports progress once per step, honours cancellation
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
    from diffusers import DiffusionPipeline
    from PIL import Image

    from imagestudio.requests import GenerateRequest

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

    @property
    def fraction(self) -> float:
        return ((self.image - 1) * self.steps + self.step) / (self.images * self.steps)


ProgressCallback = Callable[[StepProgress], None]


@dataclass(frozen=True)
class RunnerImage:
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
    if not np.isfinite(array).all():
        raise BadOutput(f"the model produced NaN/inf values instead of an image ({hint})")
    if float(array.max()) <= BLACK_LEVEL:
        raise BadOutput(f"the model produced an all-black image ({hint})")


def _step_callback(
    on_step: ProgressCallback | None, cancel: threading.Event | None, image: int, images: int, steps: int
) -> Callable[..., dict[str, Any]]:
    def callback(pipe: Any, index: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_step is not None:
            on_step(StepProgress(image, images, index + 1, steps, kwargs.get("latents")))
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
    pipe: DiffusionPipeline,
    call_kwargs: dict[str, Any],
    seeds: list[int],
    steps: int,
    dtype: str,
    on_step: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[RunnerImage]:
    """Call ``pipe`` once per seed (each image reproducible on its own), checking every output."""
    results: list[RunnerImage] = []
    for number, seed in enumerate(seeds, start=1):
        if cancel is not None and cancel.is_set():
            raise JobCancelled("cancelled")
        output = pipe(
            **call_kwargs,
            num_inference_steps=steps,
            generator=generator_for(seed),
            output_type="np",
            callback_on_step_end=_step_callback(on_step, cancel, number, len(seeds), steps),
        )
        if cancel is not None and cancel.is_set():
            raise JobCancelled("cancelled")
        array = output.images[0]
        check_output(array, dtype)
        results.append(RunnerImage(pipe.numpy_to_pil(array[None])[0], seed))
    return results


def generate_kwargs(request: GenerateRequest) -> dict[str, Any]:
    """The ZImagePipeline arguments for a resolved request (steps, seed and callback added by the caller)."""
    return {
        "prompt": request.prompt,
        "height": request.height,
        "width": request.width,
        "guidance_scale": request.guidance_scale,
    }
