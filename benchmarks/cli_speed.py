"""CLI responsiveness: ``imagestudio --help`` and ``imagestudio models list`` as fresh processes.

Both must answer in under half a second, which they can only do without importing torch. The bare
interpreter start (``python -c pass``) is measured interleaved with them, for context: it is the floor
no command can go below on this machine.
"""

from __future__ import annotations

import subprocess

from benchmarks.context import PYTHON, BenchContext, subprocess_env
from benchmarks.report import Row, Target, failed_row
from benchmarks.stats import interleaved, summarize, timed

NAME = "cli"
TITLE = "CLI responsiveness: --help and models list as fresh processes"
TARGET = Target("<", 0.5)


def _runner(argv: list[str]):
    env = subprocess_env()

    def run() -> None:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:])} exited {done.returncode}: {done.stderr.strip()[:200]}")

    return run


def run(ctx: BenchContext) -> list[Row]:
    config = ctx.write_config(
        "cli-config.yaml",
        f"storage:\n  models_dir: {ctx.models_dir}\n  outputs_dir: {ctx.outputs_dir}\n",
    )
    bare = _runner([PYTHON, "-c", "pass"])
    commands = {
        "imagestudio --help": [PYTHON, "-m", "imagestudio", "--help"],
        "imagestudio models list": [PYTHON, "-m", "imagestudio", "models", "list", "--config", str(config)],
    }
    rows = []
    for case, argv in commands.items():
        ctx.say(f"{NAME}: {case}")
        try:
            app_s, bare_s = interleaved(timed(_runner(argv)), timed(bare), ctx.repeat, ctx.warmup)
        except Exception as exc:  # noqa: BLE001 - reported as an ERROR row, the run goes on
            rows.append(failed_row(NAME, case, exc))
            continue
        app = summarize(app_s)
        rows.append(
            Row(
                benchmark=NAME,
                case=case,
                status="measured",
                value=app.median,
                unit="s",
                target=TARGET,
                app=app,
                baseline=summarize(bare_s),
                note="value = median wall time of the command; baseline = bare `python -c pass`, for context",
                samples={"app": app_s, "baseline": bare_s},
            )
        )
    return rows
