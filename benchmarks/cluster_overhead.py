"""Per-job overhead of the cluster backend: the same tiny job through Ray workers vs the in-process queue.

Both sides run the job the same way (a Studio on the tiny Z-Image, 64², 2 steps, model already loaded)
and both are timed from ``submit`` to the finished job: the in-process ``JobQueue`` with its worker
thread, and ``cluster.backend: ray`` with one worker actor on a private 127.0.0.1 Ray runtime, where the
request is pickled to the actor, steps stream back, and the head writes the PNG. The difference is what
the cluster adds per job; the issue's budget is about 0.1 s.

Not in the default ``python -m benchmarks`` run: it needs the optional ``[cluster]`` extra and starts a
Ray runtime (seconds). Run it alone::

    python -m benchmarks.cluster_overhead [--repeat 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.context import PROMPT, SRC, BenchContext, subprocess_env
from benchmarks.report import Row, failed_row, ratio_row, unavailable_row
from benchmarks.stats import interleaved, median

NAME = "cluster_overhead"
TITLE = "cluster overhead: one tiny job through a Ray worker vs the in-process queue (submit → done)"
#: No pass/fail on the ratio: a tiny job takes ~50 ms, so the ratio mostly shows the fixed cost; the
#: budget is absolute (about 0.1 s per job, in the row's note).
TARGET = None
CASE = "generate 64×64, 2 steps, model loaded"
MODEL, SIDE, STEPS = "tiny-z-image", 64, 2
WAIT_S = 300.0


def run(ctx: BenchContext) -> list[Row]:
    if importlib.util.find_spec("ray") is None:
        reason = 'Ray is not installed (pip install "imagestudio[cluster]")'
        return [unavailable_row(NAME, CASE, reason, TARGET)]
    try:
        return [_measure(ctx)]
    except Exception as exc:  # noqa: BLE001 - reported as an ERROR row
        return [failed_row(NAME, CASE, exc)]


def _measure(ctx: BenchContext) -> Row:
    from imagestudio.cluster.service import build_cluster_queue
    from imagestudio.job_requests import GenerateRequest
    from imagestudio.jobs.dispatch import StudioDispatcher
    from imagestudio.jobs.local_queue import JobQueue
    from imagestudio.studio import Studio

    ctx.tiny_model(MODEL)
    settings = ctx.settings({"cluster": {"backend": "ray", "local_workers": 1, "poll_s": 0.5}})
    request = GenerateRequest.build(model=MODEL, prompt=PROMPT, width=SIDE, height=SIDE, steps=STEPS, seed=7)
    request = request.resolved(settings)
    studio = Studio(settings)
    local = JobQueue(StudioDispatcher(studio), max_queue=4)
    cluster = build_cluster_queue(settings, recorder=None)
    local.start()
    started = time.perf_counter()
    cluster.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not cluster.workers():
            if time.monotonic() > deadline:
                raise TimeoutError("the Ray worker did not join")
            time.sleep(0.1)
        ctx.say(f"{NAME}: Ray runtime and worker ready in {time.perf_counter() - started:.1f}s")

        def through(queue) -> float:
            began = time.perf_counter()
            info = queue.wait(queue.submit(request).id, WAIT_S)
            elapsed = time.perf_counter() - began
            if info.state.value != "done":
                raise RuntimeError(f"the job ended {info.state.value}: {info.error}")
            return elapsed

        app, baseline = interleaved(lambda: through(cluster), lambda: through(local), ctx.repeat, ctx.warmup)
    finally:
        cluster.stop(30)
        local.stop(30)
        studio.manager.unload()
    added_ms = (median(app) - median(baseline)) * 1000
    return ratio_row(NAME, CASE, app, baseline, TARGET, note=f"adds {added_ms:.0f} ms per job (median)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    # This source tree first, here and in Ray's worker processes (they inherit the environment).
    os.environ["PYTHONPATH"] = subprocess_env()["PYTHONPATH"]
    sys.path.insert(0, str(SRC))
    with tempfile.TemporaryDirectory(prefix="imagestudio-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        ctx = BenchContext(workdir, repeat=args.repeat, log=lambda m: print(m, file=sys.stderr))
        for row in run(ctx):
            print(f"{row.benchmark} | {row.case} | {row.status} | {row.value} | {row.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
