"""Model switch: generate → edit → generate in one process, timing each switch of the resident model.

The text-to-image model is the ~430 MB random-weight Z-Image (``benchmarks/models.py``, configured as
``models.tiny-z-image.path``) so that a load is dominated by its weights rather than fixed costs; the
edit model is the tiny Qwen edit pipeline. Each round starts a fresh ``Studio`` and times, through the
model manager (``manager.acquire``), the first load, the switch to the edit model and the switch back,
with an image made after each so every switch is followed by real use. Rounds with
``device.keep_in_ram`` off and on alternate. Target: switching back from RAM at least 5× faster than
the cold load (switch back with keep_in_ram off).

"Cold" here means a fresh load from files in the OS page cache (dropping that cache needs root); from a
cold disk a load only gets slower, so the figure understates the benefit of keeping a model in RAM.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.context import PROMPT, BenchContext
from benchmarks.features import edit_missing, keep_in_ram_missing
from benchmarks.inputs import reference_picture
from benchmarks.report import Row, Target, failed_row, unavailable_row
from benchmarks.stats import paired_ratios, summarize, timed

if TYPE_CHECKING:
    from imagestudio.studio import Studio

NAME = "model_switch"
TITLE = "model switch: generate → edit → generate in one process, with and without keep_in_ram"
TARGET = Target(">=", 5.0)
GENERATE_MODEL = "tiny-z-image"
EDIT_MODEL = "tiny-qwen-image-edit"
SIDE, STEPS, SEED = 64, 2, 7


def run(ctx: BenchContext) -> list[Row]:
    try:
        return _measure(ctx)
    except Exception as exc:  # noqa: BLE001 - reported as an ERROR row, the run goes on
        return [failed_row(NAME, "generate → edit → generate", exc)]


def _measure(ctx: BenchContext) -> list[Row]:
    folder = ctx.z_image()
    ctx.tiny_model(EDIT_MODEL)
    edit_reason = edit_missing()
    ram_reason = keep_in_ram_missing()
    modes = [False] if ram_reason else [False, True]
    times: dict[bool, dict[str, list[float]]] = {
        keep: {"first_load": [], "to_edit": [], "back": []} for keep in modes
    }
    rounds = max(1, ctx.repeat)
    for index in range(ctx.warmup + rounds):
        # Alternate which mode goes first (A B, B A …), as the other interleaved benchmarks do.
        order = modes if index % 2 == 0 else list(reversed(modes))
        for keep in order:
            ctx.say(f"{NAME}: round {index + 1}, keep_in_ram {'on' if keep else 'off'}")
            measured = _round(ctx, folder, keep, edit_reason is None)
            if index >= ctx.warmup:
                for key, value in measured.items():
                    times[keep][key].append(value)

    weights_mb = sum(p.stat().st_size for p in folder.rglob("*.safetensors")) / 1e6
    how = "switch = manager.acquire() of the other model: unload, then load" + (
        "" if edit_reason is None else "; no edit is run between the switches (" + edit_reason + ")"
    )
    off = times[False]
    rows = [
        _seconds_row(f"first load of Z-Image ({weights_mb:.0f} MB)", off["first_load"], how),
        _seconds_row("switch generate → edit (tiny edit model, cold)", off["to_edit"]),
        _seconds_row("switch edit → generate, keep_in_ram off (cold load)", off["back"]),
    ]
    ram_case = "switch edit → generate, keep_in_ram on (from RAM)"
    ratio_case = "switch back: cold load ÷ from RAM"
    if ram_reason:
        rows.append(unavailable_row(NAME, ram_case, ram_reason))
        rows.append(unavailable_row(NAME, ratio_case, ram_reason, TARGET))
        return rows
    on = times[True]
    rows.append(_seconds_row(ram_case, on["back"]))
    speedups = paired_ratios(off["back"], on["back"])
    spread = summarize(speedups)
    rows.append(
        Row(
            benchmark=NAME,
            case=ratio_case,
            status="measured",
            value=spread.median,
            unit="×",
            target=TARGET,
            spread=spread,
            app=summarize(on["back"]),
            baseline=summarize(off["back"]),
            note="app = switch back from RAM, baseline = cold load; value = baseline ÷ app per round"
            + ("; on a CPU device a switch back from RAM moves nothing" if _device(ctx) == "cpu" else ""),
            samples={"app": on["back"], "baseline": off["back"]},
        )
    )
    return rows


def _device(ctx: BenchContext) -> str:
    from imagestudio.hardware import resolve_device

    return resolve_device(ctx.settings().device.type)


def _round(ctx: BenchContext, folder: Path, keep_in_ram: bool, with_edit: bool) -> dict[str, float]:
    from imagestudio.studio import Studio

    device: dict[str, Any] = {"keep_in_ram": True} if keep_in_ram else {}
    settings = ctx.settings({"models": {GENERATE_MODEL: {"path": str(folder)}}, "device": device})
    studio = Studio(settings)
    out = ctx.outputs_dir / NAME
    try:
        first_load = timed(lambda: _acquire(studio, GENERATE_MODEL))()
        _generate(studio, out)
        to_edit = timed(lambda: _acquire(studio, EDIT_MODEL))()
        if with_edit:
            _edit(ctx, studio, out)
        back = timed(lambda: _acquire(studio, GENERATE_MODEL))()
        _generate(studio, out)
    finally:
        studio.manager.unload()
    return {"first_load": first_load, "to_edit": to_edit, "back": back}


def _acquire(studio: Studio, model_id: str) -> None:
    with studio.manager.acquire(model_id):
        pass


def _generate(studio: Studio, out: Path) -> None:
    from imagestudio.job_requests import GenerateRequest

    request = GenerateRequest.build(
        model=GENERATE_MODEL, prompt=PROMPT, width=SIDE, height=SIDE, steps=STEPS, seed=SEED
    )
    studio.generate(request, out_dir=out)


def _edit(ctx: BenchContext, studio: Studio, out: Path) -> None:
    from imagestudio.job_requests import EditRequest
    from imagestudio.storage.inputs import InputLimits, read_input_image

    reference = reference_picture(ctx.workdir / "inputs" / "reference.png", SIDE)
    request = EditRequest.build(
        model=EDIT_MODEL,
        prompt=PROMPT,
        images=[read_input_image(reference, InputLimits.from_settings(studio.settings))],
        width=SIDE,
        height=SIDE,
        steps=STEPS,
        seed=SEED,
    )
    studio.edit(request, out_dir=out)  # type: ignore[attr-defined]


def _seconds_row(case: str, samples: list[float], note: str = "") -> Row:
    summary = summarize(samples)
    return Row(
        benchmark=NAME,
        case=case,
        status="measured",
        value=summary.median,
        unit="s",
        app=summary,
        note=note,
        samples={"app": samples},
    )
