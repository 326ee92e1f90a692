"""Control overhead and upscaling throughput.

* ``control``: the same generation with and without a control image (canny), through the studio, model
  loaded, interleaved; the ratio is what the ControlNet (its blocks, the map's VAE encoding and the Canny
  pass) adds to a job.
* ``upscale``: one picture enlarged x2 by the upscaler in small tiles against one pass over the whole
  picture (the tiled path's cost: overlaps done twice, blending); the note gives each side's throughput
  in seconds per output megapixel.

On the tiny models (CPU, random weights) the ratios show the plumbing's cost, not the real models'
(whose ControlNet is ~15 transformer blocks against the base's 30); real-size figures need a GPU run.
"""

from __future__ import annotations

from typing import Any

from benchmarks.context import PROMPT, BenchContext
from benchmarks.report import Row, failed_row, ratio_row
from benchmarks.stats import interleaved, median

NAME = "control_upscale"
TITLE = "control overhead (with / without a control image) and upscale throughput (tiles / one pass)"
MODEL, SIDE, STEPS = "tiny-z-image", 64, 2
UPSCALE_SIDE, SMALL_TILE = 256, 64


def run(ctx: BenchContext) -> list[Row]:
    rows = []
    for case, measure in (
        (f"generate {SIDE}×{SIDE}, {STEPS} steps, canny control vs none", _control),
        (f"upscale {UPSCALE_SIDE}² x2, tiles of {SMALL_TILE} vs one pass", _upscale),
    ):
        try:
            rows.append(measure(ctx, case))
        except Exception as exc:  # noqa: BLE001 - reported as a failed row
            rows.append(failed_row(NAME, case, exc))
    return rows


def _square_picture(side: int) -> Any:
    import io

    import numpy as np
    from PIL import Image

    from imagestudio.storage.inputs import InputLimits, read_input_image

    y, x = np.mgrid[0:side, 0:side]
    array = np.stack([x * 255 // side, y * 255 // side, ((x // 8 + y // 8) % 2) * 255], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return read_input_image(
        buffer.getvalue(), InputLimits(max_bytes=10**8, max_pixels=10**8), name="bench.png"
    )


def _control(ctx: BenchContext, case: str) -> Row:
    from imagestudio.job_requests import ControlInput, GenerateRequest
    from imagestudio.studio import Studio

    ctx.tiny_model(MODEL)
    settings = ctx.settings()
    studio = Studio(settings)
    out = ctx.outputs_dir / NAME
    base = {"model": MODEL, "prompt": PROMPT, "width": SIDE, "height": SIDE, "steps": STEPS, "seed": 7}
    plain = GenerateRequest.build(**base).resolved(settings)
    control = ControlInput.build(type="canny", image=_square_picture(SIDE))
    controlled = GenerateRequest.build(**base, control=control).resolved(settings)

    def timed(request: GenerateRequest) -> float:
        return studio.generate(request, out).elapsed_s

    try:
        app, baseline = interleaved(lambda: timed(controlled), lambda: timed(plain), ctx.repeat, ctx.warmup)
    finally:
        studio.manager.unload()
    return ratio_row(NAME, case, app, baseline, None, note="tiny models on this machine's device")


def _upscale(ctx: BenchContext, case: str) -> Row:
    import time

    from imagestudio.engine.upscale import load_upscaler, upscale_image
    from imagestudio.memory.upscale import plan_upscale
    from imagestudio.models.upscalers import ensure_tiny_upscaler

    path = ensure_tiny_upscaler(ctx.models_dir / "upscalers" / "tiny-upscaler.safetensors")
    model = load_upscaler(path, "cpu")
    picture = _square_picture(UPSCALE_SIDE).image
    out = UPSCALE_SIDE * 2
    plans = {
        side: plan_upscale(free_bytes=None, scale=2, dtype_bytes=4, out_width=out, out_height=out, tile=side)
        for side in (SMALL_TILE, UPSCALE_SIDE)
    }

    def timed(tile: int) -> float:
        began = time.perf_counter()
        upscale_image(model, picture, 2, plans[tile], device="cpu")
        return time.perf_counter() - began

    app, baseline = interleaved(
        lambda: timed(SMALL_TILE), lambda: timed(UPSCALE_SIDE), ctx.repeat, ctx.warmup
    )
    megapixels = out * out / 1e6
    note = (
        f"{median(app) / megapixels:.2f} s/MP in tiles, {median(baseline) / megapixels:.2f} s/MP in one pass "
        "(tiny upscaler, CPU)"
    )
    return ratio_row(NAME, case, app, baseline, None, note=note)
