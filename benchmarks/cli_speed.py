"""CLI responsiveness: ``imagestudio --help`` and ``imagestudio models list`` as fresh processes.

Both must answer in under half a second, which they can only do without importing torch. The bare
interpreter start (``python -c pass``) is measured interleaved with them, for context: it is the floor
no command can go below on this machine.
"""

from __future__ import annotations

from benchmarks.context import PYTHON, BenchContext, subprocess_env
from benchmarks.process import ProcessTimer
from benchmarks.report import Row, Target, failed_row
from benchmarks.stats import interleaved, summarize

NAME = "cli"
TITLE = "CLI responsiveness: --help and models list as fresh processes"
TARGET = Target("<", 0.5)


def run(ctx: BenchContext) -> list[Row]:
    config = ctx.write_config(
        "cli-config.yaml",
        f"storage:\n  models_dir: {ctx.models_dir}\n  outputs_dir: {ctx.outputs_dir}\n",
    )
    env = subprocess_env()
    commands = {
        "imagestudio --help": [PYTHON, "-m", "imagestudio", "--help"],
        "imagestudio models list": [PYTHON, "-m", "imagestudio", "models", "list", "--config", str(config)],
    }
    rows = []
    for case, argv in commands.items():
        ctx.say(f"{NAME}: {case}")
        command = ProcessTimer(argv, env, case, timeout=120)
        bare = ProcessTimer([PYTHON, "-c", "pass"], env, "python -c pass", timeout=120)
        try:
            app_s, bare_s = interleaved(command, bare, ctx.repeat, ctx.warmup)
        except Exception as exc:  # noqa: BLE001 - reported as an ERROR row, the run goes on
            rows.append(failed_row(NAME, case, exc))
            continue
        app = summarize(app_s)
        cpu = summarize(command.measured_cpu(ctx.repeat))
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
                note=f"value = median wall time; the command's own CPU time (user+sys) median "
                f"{cpu.median * 1000:.0f} ms [{cpu.q1 * 1000:.0f}–{cpu.q3 * 1000:.0f}]; baseline = bare "
                "`python -c pass`, for context",
                samples={"app": app_s, "baseline": bare_s, "app_cpu": command.measured_cpu(ctx.repeat)},
                extra={"cpu_s": cpu.as_dict()},
            )
        )
    return rows
