"""The hires pass: generate → upscale → Z-Image img2img at low strength, in tiles past the model's limit.

Z-Image makes its best pictures at about 1-2 megapixels and breaks past 2048². An upscaler enlarges the
first pass (sharp edges, but its own flat texture); a light img2img pass redraws that texture as detail
while keeping the composition. When the enlarged picture is bigger than the model allows, the img2img
runs on overlapping tiles of the model's default size, blended with the same cross-fading ramps as the
upscaler's tiles, so no seam shows.

Runs inside the job's lent pipeline (the manager's lock is held): the img2img pipeline shares every
weight with the text-to-image one (see :func:`~imagestudio.engine.pipeline_calls.derived_pipeline`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imagestudio.engine.pipeline_calls import CheckedImage, derived_pipeline, run_pipeline
from imagestudio.memory.extras import needs_tiles, tile_side

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.config import Settings
    from imagestudio.engine.manager import LoadedModel
    from imagestudio.engine.pipeline_calls import ProgressCallback
    from imagestudio.job_requests import GenerateRequest

#: Share of a tile that overlaps its neighbour (cross-faded).
OVERLAP_FRACTION = 8


def refine_tiled(
    image: Image.Image, tile: int, refine: Callable[[Image.Image], Image.Image], overlap: int | None = None
) -> Image.Image:
    """``refine`` applied to overlapping ``tile`` x ``tile`` pieces of ``image``, cross-faded back together.

    Each piece keeps its size, so ``refine`` may be any same-size image-to-image step.
    """
    import numpy as np
    import torch
    from PIL import Image

    from imagestudio.engine.upscale import _ramp, tile_starts

    overlap = overlap if overlap is not None else max(16, tile // OVERLAP_FRACTION // 16 * 16)
    width, height = image.size
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    out = torch.zeros((height, width, 3), dtype=torch.float64)
    weight = torch.zeros((height, width, 1), dtype=torch.float64)
    for row, y in enumerate(ys):
        for column, x in enumerate(xs):
            y1, x1 = min(y + tile, height), min(x + tile, width)
            piece = refine(image.crop((x, y, x1, y1)))
            array = torch.from_numpy(np.asarray(piece.convert("RGB"), dtype=np.float64))
            top = ys[row - 1] + tile - y if row else 0
            bottom = y1 - ys[row + 1] if row + 1 < len(ys) else 0
            left = xs[column - 1] + tile - x if column else 0
            right = x1 - xs[column + 1] if column + 1 < len(xs) else 0
            mask = (_ramp(y1 - y, top, bottom)[:, None] * _ramp(x1 - x, left, right)[None, :]).double()
            out[y:y1, x:x1] += array * mask[..., None]
            weight[y:y1, x:x1] += mask[..., None]
    blended = (out / weight.clamp_min(1e-8)).round().clamp(0, 255).to(torch.uint8).numpy()
    return Image.fromarray(blended, "RGB")


def hires_pass(
    settings: Settings,
    loaded: LoadedModel,
    request: GenerateRequest,
    images: list[CheckedImage],
    *,
    on_step: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[CheckedImage], dict[str, Any]]:
    """Each first-pass image upscaled and reworked; returns the images and what to record."""
    import diffusers
    from PIL import Image

    from imagestudio.engine.upscale_jobs import upscale_with
    from imagestudio.registry import get_upscaler

    size = request.hires_size()
    assert size is not None and request.hires_scale is not None, "a resolved request with a hires pass"
    width, height = size
    spec = loaded.spec
    # To a type checker diffusers' classes are untyped placeholders (see imagestudio.models.pipeline).
    pipeline_class: Any = diffusers.ZImageImg2ImgPipeline
    img2img = derived_pipeline(pipeline_class, loaded.pipe)
    upscaler = get_upscaler(request.hires_upscaler or "")
    steps = request.hires_steps or request.steps or 1
    strength = request.hires_strength or 0.0
    tiled = needs_tiles(spec, width, height)
    fields: dict[str, Any] = {}
    results = []
    for item in images:
        big, _plan, fields = upscale_with(
            settings, loaded.device, upscaler, item.image, request.hires_scale, on_step=on_step, cancel=cancel
        )
        if big.size != (width, height):
            big = big.resize((width, height), Image.Resampling.LANCZOS)

        def rework(piece: Image.Image, seed: int = item.seed) -> Image.Image:
            kwargs = {
                "prompt": request.prompt,
                "width": piece.width,
                "height": piece.height,
                "guidance_scale": request.guidance_scale,
                "image": piece,
                "strength": strength,
            }
            [done] = run_pipeline(
                img2img, kwargs, [seed], steps=steps, dtype=loaded.dtype, on_step=on_step, cancel=cancel
            )
            return done.image

        refined = refine_tiled(big, tile_side(spec), rework) if tiled else rework(big)
        results.append(CheckedImage(refined, item.seed))
    first_width, first_height = images[0].image.size
    record = {
        "hires_upscaler_name": fields.get("upscaler_name"),
        "hires_tiled": tiled,
        "first_pass_width": first_width,
        "first_pass_height": first_height,
    }
    return results, record
