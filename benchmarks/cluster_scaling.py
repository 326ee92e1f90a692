"""Throughput of the cluster with 1, 2 and 3 GPU boxes, each in its own network namespace.

One head (Ray head node + ``imagestudio serve``) and N boxes (``imagestudio worker --connect``), joined
over veth cables (see ``tests/cluster/netlab.py``; needs root). For each N the studio is started afresh
(its workers hold no model), a fixed batch of jobs of two models is submitted at once over the HTTP API,
and the time to the last result is measured; loads per worker per model come from ``/api/system``.

**The tiny models are given a test-only pause per step** (``IMAGESTUDIO_TINY_STEP_WAIT_S``, 0.2 s by
default here, off unless set): on a 2-core machine the tiny models are compute-bound, so more workers
could not run them faster; with the pause a step's time is spent off the host's cores, as on a GPU, and
the figure measures the cluster (scheduling, transport, affinity), not the CPU. A GPU run gives the real
figure. Targets: ≥ 1.8× at 2 boxes, ≥ 2.6× at 3, ≤ 1 load per worker per model. Run it alone (it
starts Ray and several servers; minutes on 2 cores)::

    python -m benchmarks.cluster_scaling [--jobs 12] [--steps 8] [--step-wait 0.2] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

Z, Q = "tiny-z-image", "tiny-qwen-image-edit"
TARGETS = {2: 1.8, 3: 2.6}
WAIT_S = 600.0


def _png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _batch(jobs: int, steps: int) -> list[dict[str, Any]]:
    """Half generate (Z-Image), half edit (Qwen edit), interleaved as two users would send them."""
    picture = _png()
    batch = []
    for index in range(jobs):
        if index % 2 == 0:
            batch.append({"kind": "generate", "model": Z, "prompt": f"z {index}", "seed": index})
        else:
            batch.append(
                {"kind": "edit", "model": Q, "prompt": f"q {index}", "images": [picture], "seed": index}
            )
        batch[-1].update(width=64, height=64, steps=steps)
    return batch


def _run_batch(lan: Any, batch: list[dict[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
    from tests.cluster.studio_lan import wait_for

    with lan.client() as http:
        started = time.perf_counter()
        ids = []
        for body in batch:
            response = http.post("/api/jobs", json=body)
            response.raise_for_status()
            ids.append(response.json()["id"])

        def all_done() -> bool:
            states = [http.get(f"/api/jobs/{job}").json()["state"] for job in ids]
            if any(state in ("failed", "cancelled") for state in states):
                raise RuntimeError(f"a job did not finish: {states}")
            return all(state == "done" for state in states)

        wait_for(all_done, "the batch", WAIT_S, every=0.1)
        return time.perf_counter() - started, lan.workers()


def measure(boxes: int, jobs: int, steps: int, step_wait: float) -> list[dict[str, Any]]:
    from tests.cluster.netlab import unavailable
    from tests.cluster.studio_lan import studio_lan, wait_for

    from imagestudio.cluster.ray_worker import TINY_STEP_WAIT_ENV
    from imagestudio.models.tiny import ensure_tiny_model

    why = unavailable()
    if why is not None:
        raise SystemExit(f"cluster_scaling needs network namespaces: {why}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="imagestudio-scaling-") as scratch:
        work = Path(scratch)
        models = work / "models"
        for model in (Z, Q):
            ensure_tiny_model(model, models / model)
        batch = _batch(jobs, steps)
        env = {TINY_STEP_WAIT_ENV: f"{step_wait:g}"}
        with studio_lan(work / "lan", models, box_env=env, max_queue=max(40, jobs)) as lan:
            for count in range(1, boxes + 1):
                lan.add_box(f"b{count}", *lan.box_args())
                lan.start_serve()  # afresh for each N: its workers start without a model
                wait_for(lambda n=count: len(lan.workers()) == n, f"{count} workers")
                seconds, workers = _run_batch(lan, batch)
                loads = [load for worker in workers for load in worker["loads"].values()]
                rows.append(
                    {
                        "workers": count,
                        "seconds": round(seconds, 2),
                        "jobs_per_min": round(60 * jobs / seconds, 1),
                        "loads": sum(loads),
                        "max_loads_per_worker_model": max(loads, default=0),
                    }
                )
                print(f"[{count} worker(s)] {rows[-1]}", file=sys.stderr)
                lan.stop_serve()
    base = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = round(base / row["seconds"], 2)
        target = TARGETS.get(row["workers"])
        row["target"] = f"≥ {target}×" if target else "—"
        row["meets"] = (target is None or row["speedup"] >= target) and row["max_loads_per_worker_model"] <= 1
    return rows


def table(rows: list[dict[str, Any]], jobs: int, steps: int, step_wait: float) -> str:
    lines = [
        f"{date.today().isoformat()}, {platform.machine()} with {_cores()} CPU cores (shared), no GPU; "
        f"{jobs} jobs (half tiny-z-image generate, half tiny-qwen-image-edit edit), 64², {steps} steps, "
        f"**test-only wait of {step_wait:g} s per step** (off by default); one studio start per row.",
        "",
        "| workers | batch time | jobs/min | speed-up vs 1 | target | loads (max per worker and model) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['workers']} | {row['seconds']:.1f} s | {row['jobs_per_min']} | {row['speedup']:.2f}× | "
            f"{row['target']} | {row['loads']} ({row['max_loads_per_worker_model']}) |"
        )
    return "\n".join(lines)


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--step-wait", type=float, default=0.2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = measure(args.boxes, args.jobs, args.steps, args.step_wait)
    print(table(rows, args.jobs, args.steps, args.step_wait))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
