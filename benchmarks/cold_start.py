"""Cold start: ``imagestudio generate`` as a fresh process until the PNG is written, versus a minimal
plain-diffusers script (``plain_generate.py``) that loads the same folder and saves a PNG.

Both make the same 64×64, 2-step picture with the tiny Z-Image model, so the time is almost all process
start, imports and loading: exactly what the app could add to. The model files are in the OS page cache
after the warm-up round for both sides (clearing it needs root), so "cold" means a cold *process*.
The two PNGs are compared pixel for pixel once, so both sides provably did the same work.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.context import PROMPT, PYTHON, BenchContext, subprocess_env
from benchmarks.process import ProcessTimer
from benchmarks.report import Row, Target, failed_row, ratio_row
from benchmarks.stats import interleaved, median, paired_ratios, summarize

NAME = "cold_start"
TITLE = "cold start: `imagestudio generate` process vs a plain diffusers script, to a written PNG"
TARGET = Target("<=", 1.05)
SIDE, STEPS, SEED = 64, 2, 7
PLAIN_SCRIPT = Path(__file__).with_name("plain_generate.py")


def run(ctx: BenchContext) -> list[Row]:
    case = f"generate {SIDE}×{SIDE}, {STEPS} steps, tiny-z-image"
    ctx.say(f"{NAME}: {case}")
    try:
        return [_measure(ctx, case)]
    except Exception as exc:  # noqa: BLE001 - reported as an ERROR row, the run goes on
        return [failed_row(NAME, case, exc)]
    finally:
        shutil.rmtree(ctx.outputs_dir / NAME, ignore_errors=True)


def _measure(ctx: BenchContext, case: str) -> Row:
    from imagestudio.storage.metadata import read_metadata

    folder = ctx.tiny_model("tiny-z-image")
    app_dir = ctx.outputs_dir / NAME / "app"
    plain_dir = ctx.outputs_dir / NAME / "plain"
    plain_dir.mkdir(parents=True, exist_ok=True)
    config = ctx.write_config(
        "cold-start-config.yaml",
        f"storage:\n  models_dir: {ctx.models_dir}\n  outputs_dir: {app_dir}\n",
    )
    env = subprocess_env()
    app_argv = [PYTHON, "-m", "imagestudio", "generate", "--model", "tiny-z-image", PROMPT]
    app_argv += ["-W", str(SIDE), "-H", str(SIDE), "--steps", str(STEPS), "--seed", str(SEED)]
    app_argv += ["--out", str(app_dir), "--config", str(config)]
    plain_out = plain_dir / "plain.png"
    plain_argv = [PYTHON, str(PLAIN_SCRIPT), str(folder), str(plain_out), PROMPT, str(SIDE), str(STEPS)]
    plain_argv += [str(SEED)]
    app = ProcessTimer(app_argv, env, "imagestudio generate")
    plain = ProcessTimer(plain_argv, env, "plain script")
    app_s, plain_s = interleaved(app, plain, ctx.repeat, ctx.warmup)
    assert app.last is not None
    written = {"app": Path(app.last.stdout.strip().splitlines()[-1]), "plain": plain_out}
    if not _same_pixels(written["app"], written["plain"]):
        return failed_row(NAME, case, "the app's PNG differs from the plain script's: not the same work")
    if read_metadata(written["app"]).get("seed") != SEED:
        return failed_row(NAME, case, "the app's PNG lacks its metadata")
    app_cpu, plain_cpu = app.measured_cpu(ctx.repeat), plain.measured_cpu(ctx.repeat)
    cpu_ratio = summarize(paired_ratios(app_cpu, plain_cpu))
    row = ratio_row(
        NAME,
        case,
        app_s,
        plain_s,
        TARGET,
        note="fresh processes, page cache warm; baseline = benchmarks/plain_generate.py; by CPU time "
        f"(user+sys) the ratio is {cpu_ratio.median:.3f} [{cpu_ratio.q1:.3f}–{cpu_ratio.q3:.3f}], "
        f"{median(app_cpu):.2f} s app vs {median(plain_cpu):.2f} s plain",
    )
    row.samples.update({"app_cpu": app_cpu, "baseline_cpu": plain_cpu})
    row.extra["cpu_ratio"] = cpu_ratio.as_dict()
    return row


def _same_pixels(a: Path, b: Path) -> bool:
    import numpy as np
    from PIL import Image

    with Image.open(a) as first, Image.open(b) as second:
        return bool(np.array_equal(np.asarray(first.convert("RGB")), np.asarray(second.convert("RGB"))))
