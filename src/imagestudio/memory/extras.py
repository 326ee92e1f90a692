"""The models a job adds beside the pipeline: the ControlNet of a controlled generation, the upscaler of a
hires pass. Planning only: sizes from the registry, nothing loaded.

A map detector (HED, depth; pose's person detector, then its pose model) runs first, while the pipeline is
resident, one model at a time, and is dropped before denoising.
The ControlNet stays whole on the accelerator while the transformer denoises (every offload profile: it is
small beside the transformer and runs once per step). The hires pass's upscaler runs after the first pass
is decoded, with the pipeline still resident; its tile is sized at run time to what is free then
(:mod:`.upscale`), so the plan counts its weights and its smallest tile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestudio.memory.upscale import TILE_SIDES, tile_bytes

if TYPE_CHECKING:
    from imagestudio.registry import ControlNetSpec, DetectorSpec, ModelSpec, UpscalerSpec

#: Bytes per parameter of the released files: the Union ControlNet ships bf16, ESRGAN files and the
#: detectors fp32.
CONTROLNET_FILE_DTYPE_BYTES = 2
UPSCALER_FILE_DTYPE_BYTES = 4
#: A detector runs once on a picture of at most ~640² (its preprocessor's size; ViTPose on 256×192 crops of
#: each person): its activations are a small multiple of its weights. An allowance, not a measurement.
DETECTOR_ACTIVATION_FACTOR = 2


def controlnet_bytes(spec: ControlNetSpec, dtype_bytes: int) -> int:
    """Accelerator bytes of the ControlNet loaded at the pipeline's dtype (``dtype_bytes`` per parameter)."""
    return spec.download_bytes * dtype_bytes // CONTROLNET_FILE_DTYPE_BYTES


def upscaler_bytes(spec: UpscalerSpec, dtype_bytes: int) -> int:
    """Accelerator bytes of the hires pass's upscaler: its weights plus the smallest tile it runs with."""
    weights = spec.download_bytes * dtype_bytes // UPSCALER_FILE_DTYPE_BYTES
    return weights + tile_bytes(TILE_SIDES[-1], spec.scale, dtype_bytes)


def detector_bytes(spec: DetectorSpec) -> int:
    """Bytes a control-map detector needs while it runs (loaded as its file is, fp32): the largest of it
    and its companions, which run one after the other."""
    from imagestudio.registry import detector_parts

    allowance = 1 + DETECTOR_ACTIVATION_FACTOR
    return max(
        part.run_bytes if part.run_bytes is not None else part.download_bytes * allowance
        for part in detector_parts(spec)
    )


def needs_tiles(spec: ModelSpec, width: int, height: int) -> bool:
    """Whether ``width`` x ``height`` is past what the model makes in one piece."""
    return width * height > spec.max_pixels or max(width, height) > spec.max_side


def tile_side(spec: ModelSpec) -> int:
    """Tiles of the model's default size (its best quality), a multiple of 16."""
    side = spec.default_width or 1024
    return max(16, side // 16 * 16)
