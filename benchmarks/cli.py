"""Command line of the benchmark runner (``python -m benchmarks --help``)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from benchmarks.report import Row, TableLayout, failed_row


def registry() -> dict[str, ModuleType]:
    """Benchmark name → module with ``NAME``, ``TITLE`` and ``run(ctx) -> list[Row]``, in run order."""
    from benchmarks import cli_speed, cold_start, control_upscale, load_memory, overhead, switch

    modules = (overhead, cold_start, cli_speed, switch, load_memory, control_upscale)
    return {module.NAME: module for module in modules}


def table_layouts() -> dict[str, TableLayout]:
    """Benchmark name → its own table, for the benchmarks whose rows are not app-vs-baseline ratios."""
    from benchmarks import real_size

    modules = (*registry().values(), real_size)
    return {module.NAME: module.TABLE for module in modules if hasattr(module, "TABLE")}


def parse_cases(text: str) -> list[tuple[int, int]]:
    """``"64x2,512x8"`` → ``[(64, 2), (512, 8)]`` (side × steps)."""
    cases = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        side, sep, steps = part.lower().partition("x")
        if not sep or not side.isdigit() or not steps.isdigit():
            raise argparse.ArgumentTypeError(f"{part!r} is not SIDExSTEPS (e.g. 512x8)")
        if int(side) % 16 or int(side) < 16:
            raise argparse.ArgumentTypeError(f"side {side} must be a positive multiple of 16")
        if int(steps) < 1:
            raise argparse.ArgumentTypeError("steps must be at least 1")
        cases.append((int(side), int(steps)))
    if not cases:
        raise argparse.ArgumentTypeError("no cases given")
    return cases


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    from benchmarks.real_size import PROFILES, WORKLOADS

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure imagestudio against plain diffusers: warm overhead, cold start, CLI speed, "
        "model switching and load memory; or, with --real-size, full-size transformers on a CUDA GPU.",
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="Run only this benchmark (repeatable; see --list)."
    )
    parser.add_argument("--list", action="store_true", help="List the benchmarks and exit.")
    parser.add_argument("--repeat", type=positive, default=7, help="Measured repeats per case (default 7).")
    parser.add_argument("--warmup", type=int, default=1, help="Discarded warm-up rounds (default 1).")
    parser.add_argument("--json", type=Path, metavar="PATH", help="Also write the results as JSON here.")
    parser.add_argument(
        "--workdir", type=Path, help="Folder for models and outputs (default: a temporary folder, removed)."
    )
    parser.add_argument(
        "--overhead-cases",
        type=parse_cases,
        default=[(64, 2), (512, 8), (1024, 8)],
        metavar="SIDExSTEPS,…",
        help="Warm-overhead image sizes and step counts (default 64x2,512x8,1024x8).",
    )
    parser.add_argument(
        "--threads",
        type=positive,
        help="CPU threads for torch here and in every child process (OMP_NUM_THREADS); on a shared, "
        "busy machine 1 gives far steadier timings. Default: torch's own choice.",
    )
    parser.add_argument(
        "--real-size",
        action="store_true",
        help="Run the real-size GPU harness instead: full-size random-weight transformers on CUDA.",
    )
    parser.add_argument(
        "--reduced",
        action="store_true",
        help="With --real-size: the same harness at a tiny size (CPU works).",
    )
    parser.add_argument("--device", help="With --real-size: torch device (default: cuda if available).")
    parser.add_argument(
        "--models", help=f"With --real-size: comma-separated subset of {', '.join(WORKLOADS)}."
    )
    parser.add_argument(
        "--profiles", help=f"With --real-size: comma-separated subset of {', '.join(PROFILES)}."
    )
    parser.add_argument(
        "--peak-tflops", type=float, help="With --real-size: the device's peak bf16 TFLOP/s for MFU."
    )
    return parser


def _subset(text: str | None, known: list[str], what: str) -> list[str] | None:
    if text is None:
        return None
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        print(
            f"error: unknown {what} {', '.join(unknown) or '(none)'}; known: {', '.join(known)}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return chosen


def run_selected(
    names: list[str], ctx_factory: Callable[[], object], log: Callable[[str], None]
) -> list[Row]:
    """Run the named benchmarks in registry order; one that crashes becomes an ERROR row."""
    rows: list[Row] = []
    modules = registry()
    ctx = ctx_factory()
    for name in names:
        module = modules[name]
        log(f"— {module.TITLE}")
        try:
            rows.extend(module.run(ctx))
        except Exception as exc:  # noqa: BLE001 - reported as an ERROR row, the run goes on
            rows.append(failed_row(name, "(whole benchmark)", exc))
    return rows


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from benchmarks.report import machine_info, print_table, results_document, write_json

    args = build_parser().parse_args(argv)
    modules = registry()
    console = Console(stderr=True)
    if args.list:
        for name, module in modules.items():
            print(f"{name:14} {module.TITLE}")
        return 0
    if args.reduced and not args.real_size:
        console.print("error: --reduced goes with --real-size")
        return 2
    if args.threads is not None:
        # Before torch is first imported (here and, through the environment, in child processes).
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(args.threads)
    machine = machine_info()
    options = {
        "repeat": args.repeat,
        "warmup": args.warmup,
        "real_size": args.real_size,
        "reduced": args.reduced,
        "threads": args.threads,
        "argv": sys.argv[1:] if argv is None else argv,
    }
    log = console.log
    if args.real_size:
        rows = _real_size(args, log)
        if rows is None:
            return 2
    else:
        names = args.only or list(modules)
        unknown = [name for name in names if name not in modules]
        if unknown:
            console.print(f"error: unknown benchmark {unknown[0]!r}; known: {', '.join(modules)}")
            return 2
        options["benchmarks"] = names
        options["overhead_cases"] = [list(case) for case in args.overhead_cases]
        rows = _run_with_workdir(args, names, log)
    print_table(rows)
    if args.json:
        write_json(results_document(rows, machine, options), args.json)
        console.print(f"results written to {args.json}")
    failed = any(row.status == "failed" for row in rows)
    return 1 if failed else 0


def _run_with_workdir(args: argparse.Namespace, names: list[str], log: Callable[[str], None]) -> list[Row]:
    from benchmarks.context import BenchContext

    def context(workdir: Path) -> Callable[[], BenchContext]:
        return lambda: BenchContext(
            workdir=workdir,
            repeat=args.repeat,
            warmup=args.warmup,
            overhead_cases=args.overhead_cases,
            log=log,
        )

    if args.workdir is not None:
        return run_selected(names, context(args.workdir), log)
    with tempfile.TemporaryDirectory(prefix="imagestudio-bench-") as tmp:
        return run_selected(names, context(Path(tmp)), log)


def _real_size(args: argparse.Namespace, log: Callable[[str], None]) -> list[Row] | None:
    from benchmarks.real_size import PROFILES, WORKLOADS, NeedsCuda, run_harness

    models = _subset(args.models, list(WORKLOADS), "model")
    profiles = _subset(args.profiles, list(PROFILES), "profile")
    try:
        return run_harness(
            reduced=args.reduced,
            device=args.device,
            models=models,
            profiles=profiles,
            repeat=args.repeat,
            warmup=max(args.warmup, 1),
            peak_tflops=args.peak_tflops,
            log=log,
        )
    except NeedsCuda as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
