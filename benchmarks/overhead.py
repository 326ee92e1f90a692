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

import itertools
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.context import PROMPT, BenchContext
from benchmarks.features import edit_missing
from benchmarks.inputs import reference_picture
from benchmarks.report import Row, Target, failed_row, ratio_row, unavailable_row
from benchmarks.stats import interleaved, timed

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

    from imagestudio.requests import GenerateRequest

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
        return failed_row(
            NAME, case, "the app's image differs from the plain call's: arguments not identical"
        )
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

    from imagestudio.requests import EditRequest  # type: ignore[attr-defined]

    ctx.tiny_model("tiny-qwen-image-edit")
    reference = reference_picture(ctx.workdir / "inputs" / "reference.png", EDIT_SIDE)
    request = EditRequest.build(
        model="tiny-qwen-image-edit",
        prompt=PROMPT,
        images=[reference],
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
        return failed_row(
            NAME, case, "the app's image differs from the plain call's: arguments not identical"
        )
    app_s, plain_s = interleaved(timed(app), timed(plain), ctx.repeat, ctx.warmup)
    return ratio_row(NAME, case, app_s, plain_s, TARGET, note="baseline = pipe(image=[…], …) + image.save()")
