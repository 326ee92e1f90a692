"""Load memory: peak RSS while loading a pipeline, against the bytes of its weights.

A ~430 MB random-weight Z-Image pipeline (``benchmarks/models.py``) is loaded in fresh processes
(``benchmarks/load_child.py``), alternately through the app's loader and through a plain
``ZImagePipeline.from_pretrained``; each measures the rise of its resident memory from after its imports
until every weight has been read once. Two storages are measured: bf16 files (loaded as they are) and
fp32 files loaded as bf16, which is how the real Z-Image-Turbo transformer ships.

The figure is the median peak rise over the bytes of the weights as loaded (bf16). Two rows per storage:
all resident memory (what ``ps`` shows as RSS, including memory-mapped file pages) and anonymous memory
only (what must really fit in RAM; mapped file pages are clean page cache the kernel can drop).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.context import PYTHON, BenchContext, subprocess_env
from benchmarks.report import Row, Target, failed_row
from benchmarks.stats import interleaved, median, summarize

NAME = "load_memory"
TITLE = "load memory: peak RSS while loading a pipeline (~430 MB) vs the bytes of its weights"
TARGET = Target("<=", 1.25)
#: Memory figures barely move between runs (each run costs a fresh process and all its imports).
MAX_REPEATS = 3
STORAGES = {"bfloat16": "bf16 files → bf16", "float32": "fp32 files → bf16 (as Z-Image-Turbo ships)"}


def child(mode: str, folder: Path, workdir: Path) -> dict[str, Any]:
    """Run one measured load in a fresh process and return its figures."""
    argv = [PYTHON, "-m", "benchmarks.load_child", mode, str(folder), str(workdir)]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=subprocess_env(), timeout=900, check=False
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [""]
        raise RuntimeError(f"load_child {mode} exited {done.returncode}: {lines[-1][:200]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(ctx: BenchContext) -> list[Row]:
    rows: list[Row] = []
    for storage in ctx.load_storages:
        label = STORAGES[storage]
        ctx.say(f"{NAME}: {label}")
        try:
            rows.extend(_measure(ctx, storage, label))
        except Exception as exc:  # noqa: BLE001 - reported as an ERROR row, the run goes on
            rows.append(failed_row(NAME, label, exc))
    return rows


def _measure(ctx: BenchContext, storage: str, label: str) -> list[Row]:
    folder = ctx.z_image(storage)
    records: dict[str, list[dict[str, Any]]] = {"app": [], "plain": []}

    def measure(mode: str):
        def run_one() -> float:
            record = child(mode, folder, ctx.workdir)
            records[mode].append(record)
            return float(record["peak_rss"] - record["baseline_rss"])

        return run_one

    app_total, plain_total = interleaved(
        measure("app"), measure("plain"), repeats=max(1, min(ctx.repeat, MAX_REPEATS)), warmup=0
    )
    weights = records["app"][0]["module_bytes"]
    if any(r["module_bytes"] != weights for r in records["app"] + records["plain"]):
        raise RuntimeError("the app and the plain load produced weights of different sizes")
    app_anon = [float(r["peak_anon_sampled"] - r["baseline_anon"]) for r in records["app"]]
    plain_anon = [float(r["peak_anon_sampled"] - r["baseline_anon"]) for r in records["plain"]]
    load_only = median([float(r["load_only_peak_rss"] - r["baseline_rss"]) for r in records["app"]])
    app_load_s = median([r["load_s"] for r in records["app"]])
    plain_load_s = median([r["load_s"] for r in records["plain"]])
    exact = all(r["peak_exact"] for r in records["app"] + records["plain"])
    peak_how = "kernel peak mark (VmHWM, reset after imports)" if exact else "1 ms sampling"
    common = (
        f"weights {weights / 1e6:.0f} MB as loaded; {len(app_total)} fresh processes per side; "
        f"load {app_load_s:.2f} s app vs {plain_load_s:.2f} s plain"
    )
    total_row = _row(
        f"{label}: peak RSS",
        app_total,
        plain_total,
        weights,
        f"{common}; peak by {peak_how}; load alone (before first use) "
        f"{load_only / weights:.2f}× — mapped weights come in on first use",
    )
    anon_row = _row(
        f"{label}: peak anonymous RSS",
        app_anon,
        plain_anon,
        weights,
        f"{common}; sampled every 1 ms; excludes clean memory-mapped file pages, which the kernel can drop",
    )
    return [total_row, anon_row]


def _row(case: str, app: list[float], plain: list[float], weights: int, note: str) -> Row:
    app_summary = summarize(app)
    plain_ratio = median(plain) / weights
    return Row(
        benchmark=NAME,
        case=case,
        status="measured",
        value=app_summary.median / weights,
        unit="× weights",
        target=TARGET,
        app=app_summary,
        baseline=summarize(plain),
        sample_unit="B",
        note=f"plain from_pretrained: {plain_ratio:.2f}× weights; {note}",
        samples={"app": app, "baseline": plain, "weights_bytes": [float(weights)]},
    )
