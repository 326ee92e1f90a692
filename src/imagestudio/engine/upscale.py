"""Upscaling with ESRGAN-family networks that spandrel loads from ``.safetensors``, tile by tile.

spandrel recognises the architecture from the weights (RRDBNet/ESRGAN, Real-ESRGAN's compact SRVGGNet
and the rest of its list) and gives a model with its scale; this module feeds it overlapping tiles and
blends them back with linear ramps over the overlaps, so the accelerator only ever holds one tile
(:mod:`imagestudio.memory.upscale` sizes it) and no seam shows. A scale the network does not have is
reached by whole passes (x2 twice for x4) and a final Lanczos resize (x4 then down to x3).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import InvalidRequest, JobCancelled
from imagestudio.models.upscalers import import_spandrel

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from imagestudio.memory.upscale import UpscalePlan

#: More passes than this would mean a x1 network or an absurd scale; the request's limits stop both first.
MAX_PASSES = 3

TileCallback = Callable[[int, int], None]


def load_upscaler(path: Path, device: str) -> Any:
    """The spandrel model in ``path`` on ``device``, in eval mode; a file it cannot use is one line.

    Only ``.safetensors`` are read (a pickle can run code when loaded). The model must take and give RGB.
    """
    if path.suffix.lower() != ".safetensors":
        raise InvalidRequest(
            f"upscaler file {path.name!r} is not .safetensors; only safetensors weights are loaded",
            param="upscaler",
            code="upscaler_not_safetensors",
            details={"file": path.name},
        )
    from safetensors import SafetensorError

    spandrel = import_spandrel()

    try:
        model = spandrel.ModelLoader(device=device).load_from_file(path)
    except spandrel.UnsupportedModelError:
        raise InvalidRequest(
            f"upscaler file {path.name!r} holds no architecture spandrel knows (ESRGAN, Real-ESRGAN, "
            "SwinIR, …)",
            param="upscaler",
            code="upscaler_unknown_architecture",
            details={"file": path.name},
        ) from None
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError) as exc:
        raise InvalidRequest(
            f"upscaler file {path.name!r} cannot be read ({type(exc).__name__}: {str(exc)[:120]})",
            param="upscaler",
            code="upscaler_unreadable",
            details={"file": path.name},
        ) from None
    if not isinstance(model, spandrel.ImageModelDescriptor) or model.input_channels != 3:
        raise InvalidRequest(
            f"upscaler file {path.name!r} is not an RGB image upscaler ({model.architecture.name})",
            param="upscaler",
            code="upscaler_not_rgb",
            details={"file": path.name},
        )
    model.eval()
    return model


def compute_dtype(model: Any, device: str) -> torch.dtype:
    """bf16 on an accelerator when the architecture supports it (half the memory per tile), else fp32."""
    import torch

    if device != "cpu" and getattr(model, "supports_bfloat16", False):
        return torch.bfloat16
    return torch.float32


def passes_for(network_scale: int, scale: float) -> int:
    """Whole network passes needed to reach ``scale`` (a final resize takes off the rest)."""
    passes, reached = 1, network_scale
    while reached < scale - 1e-6 and passes < MAX_PASSES:
        passes += 1
        reached *= network_scale
    return passes


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``0..length`` with tiles of ``tile`` overlapping by at least ``overlap``."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp(length: int, fade_before: int, fade_after: int) -> torch.Tensor:
    """Weights along one side of a tile: rising over ``fade_before``, falling over ``fade_after``.

    Where two tiles overlap their ramps sum to a constant, so the blend is a cross-fade; a side at the
    image's border keeps full weight.
    """
    import torch

    weights = torch.ones(length)
    if fade_before:
        weights[:fade_before] = torch.linspace(0, 1, fade_before + 2)[1:-1]
    if fade_after:
        weights[length - fade_after :] = torch.linspace(1, 0, fade_after + 2)[1:-1]
    return weights


def upscale_once(
    model: Any,
    pixels: torch.Tensor,
    plan: UpscalePlan,
    dtype: torch.dtype,
    on_tile: Callable[[], None],
    cancel: threading.Event | None,
) -> torch.Tensor:
    """One network pass over ``pixels`` (1 x 3 x H x W, float32 0..1 on the CPU), tile by tile.

    Returns the float32 result on the CPU at the network's scale.
    """
    import torch

    scale = int(model.scale)
    _, channels, height, width = pixels.shape
    tile = plan.tile
    ys = tile_starts(height, tile, plan.overlap)
    xs = tile_starts(width, tile, plan.overlap)
    out = torch.zeros((channels, height * scale, width * scale), dtype=torch.float32)
    weight = torch.zeros((1, height * scale, width * scale), dtype=torch.float32)
    device = next(model.model.parameters()).device
    for y in ys:
        for x in xs:
            if cancel is not None and cancel.is_set():
                raise JobCancelled("cancelled")
            y1, x1 = min(y + tile, height), min(x + tile, width)
            crop = pixels[:, :, y:y1, x:x1].to(device=device, dtype=dtype)
            with torch.inference_mode():
                result = model(crop)[0].float().clamp(0, 1).cpu()
            # Fade only towards a neighbour, by the overlap actually shared with it (the last tile of a
            # row may overlap its neighbour by more than the planned overlap).
            top = (ys[ys.index(y) - 1] + tile - y) if y != ys[0] else 0
            left = (xs[xs.index(x) - 1] + tile - x) if x != xs[0] else 0
            bottom = (y1 - ys[ys.index(y) + 1]) if y != ys[-1] else 0
            right = (x1 - xs[xs.index(x) + 1]) if x != xs[-1] else 0
            ramp_y = _ramp((y1 - y) * scale, max(top, 0) * scale, max(bottom, 0) * scale)
            ramp_x = _ramp((x1 - x) * scale, max(left, 0) * scale, max(right, 0) * scale)
            mask = ramp_y[:, None] * ramp_x[None, :]
            region = (slice(None), slice(y * scale, y1 * scale), slice(x * scale, x1 * scale))
            out[region] += result.clone() * mask
            weight[region] += mask
            on_tile()
    return out / weight.clamp_min(1e-8)


def count_tiles(width: int, height: int, network_scale: int, passes: int, plan: UpscalePlan) -> int:
    """Tiles a job runs over all its passes (its progress counts them as steps)."""
    total = 0
    for _ in range(passes):
        total += len(tile_starts(height, plan.tile, plan.overlap)) * len(
            tile_starts(width, plan.tile, plan.overlap)
        )
        width, height = width * network_scale, height * network_scale
    return total


def upscale_image(
    model: Any,
    image: Image.Image,
    scale: float,
    plan: UpscalePlan,
    *,
    device: str,
    on_tile: TileCallback | None = None,
    cancel: threading.Event | None = None,
) -> Image.Image:
    """``image`` enlarged ``scale`` times: whole network passes, then a Lanczos resize to the exact size."""
    import numpy as np
    import torch
    from PIL import Image

    network_scale = int(model.scale)
    passes = passes_for(network_scale, scale)
    total = count_tiles(image.width, image.height, network_scale, passes, plan)
    done = 0

    def tile_done() -> None:
        nonlocal done
        done += 1
        if on_tile is not None:
            on_tile(done, total)

    dtype = compute_dtype(model, device)
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    pixels = torch.from_numpy(array).permute(2, 0, 1)[None]
    for _ in range(passes):
        pixels = upscale_once(model, pixels, plan, dtype, tile_done, cancel)[None]
    result = (pixels[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
    upscaled = Image.fromarray(result, "RGB")
    target = (round(image.width * scale), round(image.height * scale))
    return upscaled if upscaled.size == target else upscaled.resize(target, Image.Resampling.LANCZOS)
