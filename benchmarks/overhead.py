"""Warm overhead: one image through the app versus a plain pipeline call on the same loaded pipeline.

App side: ``Studio.generate`` with a resolved request — everything the CLI does after the process has
started and the model is loaded: request checks, the model manager's lock, the runner (per-step
callback, NaN/black check, numpy → PIL), the metadata, the PNG with both metadata chunks and the atomic
write (temporary file, ``fsync``, hard link).

Baseline: what a plain diffusers script does for the same picture — ``pipe(...)`` with identical
arguments (prompt, size, steps, guidance, a CPU generator with the same seed) on the *same* pipeline
object, then ``image.save(path)``: a plain PNG, no metadata, no ``fsync``. The baseline includes the
PNG write so that like is compared with like (both sides end with a PNG on disk); everything the app
adds beyond that — metadata, the durable atomic write, the checks — counts as the app's overhead.

Before timing, one app image and one baseline image are compared pixel for pixel: identical arguments
give identical pixels, so a difference means the comparison is not like for like and the row fails
instead of reporting a number.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.context import PROMPT, BenchContext
from benchmarks.features import edit_missing
from benchmarks.inputs import reference_picture
from benchmarks.report import Row, Target, failed_row, ratio_row, unavailable_row
from benchmarks.stats import interleaved, median, repeated, timed

if TYPE_CHECKING:
    from imagestudio.studio import Studio

NAME = "warm_overhead"
TITLE = "warm overhead: Studio.generate / Studio.edit vs plain pipeline call (same loaded tiny pipeline)"
TARGET = Target("<=", 1.03)
DIFFERENT_PIXELS = "the app's image differs from the plain call's: the arguments are not identical"
SEED = 7
#: Edit case: tiny Qwen edit, one 64² reference, 64² output, 4 steps (true CFG: 8 transformer calls).
EDIT_SIDE = 64
EDIT_STEPS = 4


def run(ctx: BenchContext) -> list[Row]:
    from imagestudio.studio import Studio

    ctx.tiny_model("tiny-z-image")
    studio = Studio(ctx.settings())
    rows: list[Row] = []
    try:
        for side, steps in ctx.overhead_cases:
            case = f"generate {side}×{side}, {steps} steps"
            ctx.say(f"{NAME}: {case}")
            try:
                rows.append(_generate_case(ctx, studio, side, steps, case))
            except Exception as exc:  # noqa: BLE001 - a broken case is a row; the others still run
                rows.append(failed_row(NAME, case, exc))
        side, steps = min(ctx.overhead_cases)
        try:
            rows.append(_fixed_costs_row(ctx, studio, side, steps))
        except Exception as exc:  # noqa: BLE001 - reported as an ERROR row, the run goes on
            rows.append(failed_row(NAME, FIXED_COSTS_CASE, exc))
        rows.append(_edit_row(ctx, studio))
    finally:
        studio.manager.unload()
        shutil.rmtree(ctx.outputs_dir / NAME, ignore_errors=True)
    return rows


def _pixels(image_or_path: Any) -> Any:
    import numpy as np
    from PIL import Image

    if isinstance(image_or_path, Path):
        with Image.open(image_or_path) as image:
            return np.asarray(image.convert("RGB"))
    return np.asarray(image_or_path.convert("RGB"))


def _generate_case(ctx: BenchContext, studio: Studio, side: int, steps: int, case: str) -> Row:
    import torch

    from imagestudio.job_requests import GenerateRequest

    request = GenerateRequest.build(
        model="tiny-z-image", prompt=PROMPT, width=side, height=side, steps=steps, seed=SEED
    ).resolved(studio.settings)
    app_dir = ctx.outputs_dir / NAME / f"app-{side}-{steps}"
    plain_dir = ctx.outputs_dir / NAME / f"plain-{side}-{steps}"
    plain_dir.mkdir(parents=True, exist_ok=True)
    counter = itertools.count()
    with studio.manager.acquire(request.model) as loaded:
        pipe = loaded.pipe

    def plain_image() -> Any:
        return pipe(
            prompt=request.prompt,
            height=request.height,
            width=request.width,
            num_inference_steps=request.steps,
            guidance_scale=request.guidance_scale,
            generator=torch.Generator("cpu").manual_seed(SEED),
        ).images[0]

    def plain() -> None:
        plain_image().save(plain_dir / f"{next(counter)}.png")

    def app() -> None:
        studio.generate(request, out_dir=app_dir)

    app_path = studio.generate(request, out_dir=app_dir).images[0].path
    if not (_pixels(app_path) == _pixels(plain_image())).all():
        return failed_row(NAME, case, DIFFERENT_PIXELS)
    app_s, plain_s = interleaved(timed(app), timed(plain), ctx.repeat, ctx.warmup)
    return ratio_row(
        NAME,
        case,
        app_s,
        plain_s,
        TARGET,
        note="baseline = pipe(...) + image.save(); app adds request checks, manager lock, step callback, "
        "NaN check, metadata chunks and an fsync'd atomic write",
    )


FIXED_COSTS_CASE = "app-side fixed cost per image (breakdown)"
#: Calls per measured piece: each is well under a millisecond, so many calls give a stable median.
FIXED_COST_CALLS = 50


def _fixed_costs_row(ctx: BenchContext, studio: Studio, side: int, steps: int) -> Row:
    """What the app adds per image, piece by piece, each timed on its own (the answer to "where does the
    overhead go" when the smallest case misses its target: these costs do not grow with the model)."""
    import io

    import numpy as np

    from imagestudio.engine.pipeline_calls import check_output
    from imagestudio.job_requests import GenerateRequest
    from imagestudio.storage.files import image_basename, write_new_file
    from imagestudio.storage.metadata import png_bytes, read_metadata

    request = GenerateRequest.build(
        model="tiny-z-image", prompt=PROMPT, width=side, height=side, steps=steps, seed=SEED
    ).resolved(studio.settings)
    folder = ctx.outputs_dir / NAME / "fixed-costs"
    saved = studio.generate(request, out_dir=folder).images[0].path
    meta = read_metadata(saved)
    image = _image(saved)
    array = np.asarray(image, dtype=np.float32) / 255.0
    data = png_bytes(image, meta)
    plain_file = folder / "plain.png"

    def acquire() -> None:
        with studio.manager.acquire(request.model):
            pass

    def plain_png() -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def per_call(action: Any) -> float:
        return median(repeated(timed(action), FIXED_COST_CALLS, warmup=3))

    pieces = {
        "request checks": per_call(lambda: request.resolved(studio.settings)),
        "manager lock": per_call(acquire),
        "NaN/black check": per_call(lambda: check_output(array, "bfloat16")),
        "metadata chunks": per_call(lambda: png_bytes(image, meta)) - per_call(plain_png),
        "fsync'd atomic write": per_call(
            lambda: write_new_file(folder, image_basename(PROMPT, SEED), ".png", data)
        )
        - per_call(lambda: plain_file.write_bytes(data)),
    }
    total = sum(pieces.values())
    breakdown = ", ".join(f"{name} {seconds * 1000:.2f} ms" for name, seconds in pieces.items())
    return Row(
        benchmark=NAME,
        case=FIXED_COSTS_CASE,
        status="measured",
        value=total,
        unit="s",
        note=f"at {side}×{side}: {breakdown} (each the median of {FIXED_COST_CALLS} calls, minus the plain "
        "counterpart where the baseline does the same thing); independent of model size",
        extra={"pieces_s": pieces},
    )


def _image(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def _edit_row(ctx: BenchContext, studio: Studio) -> Row:
    case = f"edit {EDIT_SIDE}×{EDIT_SIDE}, 1 reference, {EDIT_STEPS} steps"
    missing = edit_missing()
    if missing:
        return unavailable_row(NAME, case, missing, TARGET)
    ctx.say(f"{NAME}: {case}")
    try:
        return _edit_case(ctx, studio, case)
    except Exception as exc:  # noqa: BLE001 - reported as an ERROR row, the run goes on
        return failed_row(NAME, case, exc)


def _edit_case(ctx: BenchContext, studio: Studio, case: str) -> Row:
    """Edit overhead; written against the expected interface (``Studio.edit(EditRequest)``).

    Expects ``EditRequest.build(images=[path, …], …)`` and the resolved request to carry
    ``negative_prompt`` and ``true_cfg_scale``; the pixel comparison below refuses to report a ratio if the
    plain call does not reproduce the app's image (for instance if the app encodes references at a
    different resolution than the plain pipeline call does).
    """
    import torch
    from PIL import Image

    from imagestudio.job_requests import EditRequest
    from imagestudio.storage.inputs import InputLimits, read_input_image

    ctx.tiny_model("tiny-qwen-image-edit")
    reference = reference_picture(ctx.workdir / "inputs" / "reference.png", EDIT_SIDE)
    request = EditRequest.build(
        model="tiny-qwen-image-edit",
        prompt=PROMPT,
        images=[read_input_image(reference, InputLimits.from_settings(studio.settings))],
        width=EDIT_SIDE,
        height=EDIT_SIDE,
        steps=EDIT_STEPS,
        seed=SEED,
    ).resolved(studio.settings)
    app_dir = ctx.outputs_dir / NAME / "app-edit"
    plain_dir = ctx.outputs_dir / NAME / "plain-edit"
    plain_dir.mkdir(parents=True, exist_ok=True)
    counter = itertools.count()
    with studio.manager.acquire(request.model) as loaded:
        pipe = loaded.pipe

    def plain_image() -> Any:
        with Image.open(reference) as picture:
            image = picture.convert("RGB")
        # The plain pipeline encodes references at its module constants; give it the areas the app uses
        # so both do the same work (the app passes them per call, without touching module globals).
        with reference_areas(request.reference_vae_area, request.reference_condition_area):
            return plain_call(image)

    def plain_call(image: Any) -> Any:
        return pipe(
            image=[image],
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            true_cfg_scale=request.true_cfg_scale,
            height=request.height,
            width=request.width,
            num_inference_steps=request.steps,
            generator=torch.Generator("cpu").manual_seed(SEED),
        ).images[0]

    def plain() -> None:
        plain_image().save(plain_dir / f"{next(counter)}.png")

    def app() -> None:
        studio.edit(request, out_dir=app_dir)  # type: ignore[attr-defined]

    app_path = studio.edit(request, out_dir=app_dir).images[0].path  # type: ignore[attr-defined]
    if not (_pixels(app_path) == _pixels(plain_image())).all():
        return failed_row(NAME, case, DIFFERENT_PIXELS)
    app_s, plain_s = interleaved(timed(app), timed(plain), ctx.repeat, ctx.warmup)
    return ratio_row(NAME, case, app_s, plain_s, TARGET, note="baseline = pipe(image=[…], …) + image.save()")


@contextlib.contextmanager
def reference_areas(vae_area: int | None, condition_area: int | None) -> Iterator[None]:
    """Set the edit pipeline's reference areas for a plain call (single-threaded benchmark only)."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as module

    saved = module.VAE_IMAGE_SIZE, module.CONDITION_IMAGE_SIZE
    module.VAE_IMAGE_SIZE = vae_area or saved[0]
    module.CONDITION_IMAGE_SIZE = condition_area or saved[1]
    try:
        yield
    finally:
        module.VAE_IMAGE_SIZE, module.CONDITION_IMAGE_SIZE = saved
