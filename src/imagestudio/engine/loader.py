"""Load a model's diffusers pipeline and place it as its memory plan says, the same way for real and
tiny models (the folder comes from :mod:`imagestudio.models.locate`).

Rules every load follows (see shared notes on the models):

* ``torch_dtype`` is passed to ``from_pretrained``; casting afterwards with ``.to(dtype)`` holds two
  copies of the weights in RAM at once (the 32 GB-host crash users report when loading Qwen edit).
* safetensors only: a folder holding only pickle weights is refused rather than unpickled.
* nothing is downloaded implicitly: a missing model is a :class:`ModelNotAvailable` with its size and
  the command that fetches it (downloads check disk space first and show progress).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from imagestudio.errors import ModelNotAvailable
from imagestudio.models.quiet import quiet_library_progress
from imagestudio.models.state import require_model_dir
from imagestudio.registry import ModelSpec

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.memory.plan import MemoryPlan

log = logging.getLogger(__name__)


class PipelineLoader(Protocol):
    """Reads a model's pipeline from disk onto the CPU (:func:`load_pipeline`, or a wrapper around it)."""

    def __call__(self, spec: ModelSpec, settings: Settings, quantization_config: Any = None) -> Any: ...


def _refuse_pickle_only(folder: Path) -> None:
    has_safetensors = any(folder.rglob("*.safetensors"))
    has_pickle = any(p for pattern in ("*.bin", "*.pt", "*.ckpt", "*.pth") for p in folder.rglob(pattern))
    if has_pickle and not has_safetensors:
        raise ModelNotAvailable(
            f"{folder} holds only pickle weights (.bin/.pt); imagestudio loads safetensors only, because "
            "pickle files can run code when loaded",
            param="model",
            code="model_pickle_only",
            details={"folder": str(folder)},
        )


def load_pipeline(spec: ModelSpec, settings: Settings, quantization_config: Any = None) -> Any:
    """Load the model's pipeline on the CPU in its configured dtype; placing it is the caller's job.

    ``quantization_config`` (a diffusers ``PipelineQuantizationConfig``, from the memory plan) quantizes
    components while they load, so the full-precision weights never sit in RAM.
    """
    import diffusers
    import torch

    quiet_library_progress()
    folder = require_model_dir(spec, settings)
    _refuse_pickle_only(folder)
    options = settings.model(spec.id)
    pipeline_class = getattr(diffusers, spec.pipeline_class)
    kwargs: dict[str, Any] = {
        # ``dtype`` (diffusers 0.42's name for ``torch_dtype``): weights are created in it, never cast after.
        "dtype": getattr(torch, options.torch_dtype),
        "low_cpu_mem_usage": options.low_cpu_mem_usage,
        "use_safetensors": True,
    }
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if spec.family == "qwen-image-edit":
        from imagestudio.models.processor import load_edit_processor

        processor = load_edit_processor(folder / "processor")
        if processor is not None:
            kwargs["processor"] = processor
    log.info("loading %s from %s (%s)", spec.id, folder, options.torch_dtype)
    pipe = pipeline_class.from_pretrained(folder, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_planned(
    loader: PipelineLoader, spec: ModelSpec, settings: Settings, device: str, plan: MemoryPlan
) -> Any:
    """Load ``spec`` with ``loader`` and place it on ``device`` as the memory ``plan`` says.

    The plan's quantization (if any) is applied while the weights load; its placement (offload hooks,
    layerwise casting, VAE tiling) right after.
    """
    from imagestudio.memory.apply import apply_plan, quantization_config

    quantization = quantization_config(plan)
    pipe = (
        loader(spec, settings)
        if quantization is None
        else loader(spec, settings, quantization_config=quantization)
    )
    apply_plan(pipe, plan, device, family=spec.family)
    return pipe
