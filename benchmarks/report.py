"""Results: one :class:`Row` per measured figure, the machine they were taken on, a table and JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from benchmarks.stats import Summary, paired_ratios, summarize

#: ``status`` of a row: measured; the feature it needs is not in this build; or the benchmark broke.
Status = Literal["measured", "not available", "failed"]
NOT_AVAILABLE = "not available in this build"

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Target:
    """``value op limit``, e.g. a ratio ``<=`` 1.03 or a speed-up ``>=`` 5."""

    op: Literal["<=", "<", ">="]
    limit: float

    def met_by(self, value: float) -> bool:
        if self.op == "<=":
            return value <= self.limit
        if self.op == "<":
            return value < self.limit
        return value >= self.limit

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}"


@dataclass
class Row:
    """One figure: ``value`` (in ``unit``) judged against ``target``, with the samples behind it.

    For app-versus-baseline figures ``value`` is the median of the pair-by-pair ratios of interleaved runs
    and ``spread`` their quartiles; ``app`` and ``baseline`` summarise each side's raw samples.
    """

    benchmark: str
    case: str
    status: Status
    value: float | None = None
    unit: str = ""
    target: Target | None = None
    spread: Summary | None = None
    app: Summary | None = None
    baseline: Summary | None = None
    sample_unit: str = "s"
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    #: Further figures of this row (the real-size harness: peak VRAM, MFU, device …).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.status != "measured" or self.target is None or self.value is None:
            return None
        return self.target.met_by(self.value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "case": self.case,
            "status": self.status,
            "value": self.value,
            "unit": self.unit,
            "target": {"op": self.target.op, "limit": self.target.limit} if self.target else None,
            "passed": self.passed,
            "spread": self.spread.as_dict() if self.spread else None,
            "app": self.app.as_dict() if self.app else None,
            "baseline": self.baseline.as_dict() if self.baseline else None,
            "sample_unit": self.sample_unit,
            "note": self.note,
            "samples": self.samples,
            "extra": self.extra,
        }


def ratio_row(
    benchmark: str,
    case: str,
    app: list[float],
    baseline: list[float],
    target: Target | None,
    *,
    sample_unit: str = "s",
    note: str = "",
) -> Row:
    """A row comparing interleaved app and baseline samples by their paired ratios."""
    ratios = paired_ratios(app, baseline)
    spread = summarize(ratios)
    return Row(
        benchmark=benchmark,
        case=case,
        status="measured",
        value=spread.median,
        unit="×",
        target=target,
        spread=spread,
        app=summarize(app),
        baseline=summarize(baseline),
        sample_unit=sample_unit,
        note=note,
        samples={"app": app, "baseline": baseline},
    )


def unavailable_row(benchmark: str, case: str, reason: str, target: Target | None = None) -> Row:
    return Row(benchmark=benchmark, case=case, status="not available", target=target, note=reason)


def failed_row(benchmark: str, case: str, error: BaseException | str) -> Row:
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return Row(benchmark=benchmark, case=case, status="failed", note=message.splitlines()[0][:300])


# -------------------------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on (no torch import: the versions come from package metadata)."""
    import psutil

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "torch": _version("torch"),
        "diffusers": _version("diffusers"),
        "transformers": _version("transformers"),
        "imagestudio": _version("imagestudio") or _source_version(),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


def _source_version() -> str | None:
    try:
        from imagestudio import __version__
    except ImportError:
        return None
    return __version__


def results_document(rows: list[Row], machine: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "schema": SCHEMA_VERSION,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine, "load_average_at_end": [round(x, 2) for x in load] if load else None},
        "options": options,
        "results": [row.as_dict() for row in rows],
    }


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- table


def format_quantity(value: float | None, unit: str) -> str:
    """Seconds as s/ms, bytes as MB/GB, everything else with 3 significant digits."""
    if value is None:
        return "—"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "B":
        return f"{value / 1e9:.2f} GB" if abs(value) >= 1e9 else f"{value / 1e6:.1f} MB"
    if unit == "×":
        return f"{value:.3f}×"
    return f"{value:.3g} {unit}".strip()


def format_summary(summary: Summary | None, unit: str) -> str:
    if summary is None:
        return "—"
    return (
        f"{format_quantity(summary.median, unit)} "
        f"[{format_quantity(summary.q1, unit)}–{format_quantity(summary.q3, unit)}]"
    )


def verdict(row: Row) -> str:
    if row.status == "not available":
        return "n/a"
    if row.status == "failed":
        return "ERROR"
    if row.passed is None:
        return "info"
    return "PASS" if row.passed else "FAIL"


def table_cells(row: Row) -> list[str]:
    """The cells of one row as the console table and the markdown table show them."""
    if row.status == "measured":
        value = format_quantity(row.value, row.unit)
        if row.spread is not None and row.unit == "×":
            value += f" [{row.spread.q1:.3f}–{row.spread.q3:.3f}]"
    else:
        value = row.status
    return [
        row.benchmark,
        row.case,
        format_summary(row.app, row.sample_unit),
        format_summary(row.baseline, row.sample_unit),
        value,
        f"{row.target}{row.unit if row.unit != '×' else ''}" if row.target else "—",
        verdict(row),
    ]


TABLE_HEADERS = [
    "benchmark",
    "case",
    "app median [IQR]",
    "baseline median [IQR]",
    "value",
    "target",
    "result",
]


@dataclass(frozen=True)
class TableLayout:
    """How a benchmark's rows are shown: a table of their own, or (the default) the comparison table."""

    title: str
    headers: list[str]
    cells: Callable[[Row], list[str]]


COMPARISON = TableLayout("imagestudio benchmarks", TABLE_HEADERS, table_cells)


def grouped_by_table(rows: list[Row]) -> list[tuple[TableLayout, list[Row]]]:
    """``rows`` split into the tables they are shown in, in order of first appearance. A benchmark
    module that declares ``TABLE`` (see :func:`benchmarks.cli.table_layouts`) gets its own table."""
    from benchmarks.cli import table_layouts

    layouts = table_layouts()
    groups: dict[int, tuple[TableLayout, list[Row]]] = {}
    for row in rows:
        layout = layouts.get(row.benchmark, COMPARISON)
        groups.setdefault(id(layout), (layout, []))[1].append(row)
    return list(groups.values())


def print_table(rows: list[Row], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    # Wide enough for the figures when the output goes to a file or a pipe (rich assumes 80 columns).
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    styles = {"PASS": "green", "FAIL": "bold red", "ERROR": "bold red", "n/a": "yellow", "info": "cyan"}
    for layout, shown in grouped_by_table(rows):
        table = Table(*layout.headers, title=layout.title)
        for row in shown:
            cells = layout.cells(row)
            if layout is COMPARISON:
                cells[-1] = f"[{styles[cells[-1]]}]{cells[-1]}[/]"
            table.add_row(*cells)
        console.print(table)
    notes = [(row, row.note) for row in rows if row.note]
    for row, note in notes:
        console.print(f"[dim]{row.benchmark} · {row.case}: {note}[/]")
