"""Rows, targets, the JSON document and its rendering into the markdown page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.render import main as render_main
from benchmarks.render import render, replace_block, row_from_dict
from benchmarks.report import (
    NOT_AVAILABLE,
    Row,
    Target,
    failed_row,
    format_quantity,
    machine_info,
    print_table,
    ratio_row,
    results_document,
    table_cells,
    unavailable_row,
    verdict,
    write_json,
)


def test_targets() -> None:
    assert Target("<=", 1.03).met_by(1.03)
    assert not Target("<=", 1.03).met_by(1.031)
    assert not Target("<", 0.5).met_by(0.5)
    assert Target(">=", 5).met_by(5.0)
    assert not Target(">=", 5).met_by(4.99)
    assert str(Target("<=", 1.25)) == "<= 1.25"


def test_ratio_row_uses_paired_ratios() -> None:
    row = ratio_row("b", "c", [1.1, 2.2, 3.3], [1.0, 2.0, 3.0], Target("<=", 1.03))
    assert row.value == pytest.approx(1.1)
    assert row.passed is False
    assert row.app is not None and row.app.median == pytest.approx(2.2)
    assert row.baseline is not None and row.baseline.median == pytest.approx(2.0)
    assert verdict(row) == "FAIL"
    assert ratio_row("b", "c", [1.0], [1.0], Target("<=", 1.03)).passed is True


def test_unavailable_and_failed_rows_have_no_verdict_number() -> None:
    row = unavailable_row("warm_overhead", "edit", f"{NOT_AVAILABLE}: no edit", Target("<=", 1.03))
    assert (row.passed, verdict(row), row.value) == (None, "n/a", None)
    assert table_cells(row)[4] == "not available"
    broken = failed_row("x", "y", ValueError("first line\nsecond"))
    assert (broken.passed, verdict(broken), broken.note) == (None, "ERROR", "ValueError: first line")


def test_quantities() -> None:
    assert format_quantity(0.0123, "s") == "12.3 ms"
    assert format_quantity(2.5, "s") == "2.50 s"
    assert format_quantity(427e6, "B") == "427.0 MB"
    assert format_quantity(1.5e9, "B") == "1.50 GB"
    assert format_quantity(None, "s") == "—"


def test_document_round_trip_and_markdown(tmp_path: Path) -> None:
    rows = [
        ratio_row("warm_overhead", "generate 64×64", [1.0, 1.02], [1.0, 1.0], Target("<=", 1.03), note="n"),
        unavailable_row("warm_overhead", "edit", f"{NOT_AVAILABLE}: no edit"),
        Row("cli", "imagestudio --help", "measured", value=0.2, unit="s", target=Target("<", 0.5)),
    ]
    machine = machine_info()
    assert machine["logical_cores"] >= 1 and machine["ram_bytes"] > 0 and machine["torch"]
    document = results_document(rows, machine, {"repeat": 2, "warmup": 1, "argv": ["--repeat", "2"]})
    path = tmp_path / "r.json"
    write_json(document, path)
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert [r["passed"] for r in loaded["results"]] == [True, None, True]
    assert table_cells(row_from_dict(loaded["results"][0])) == table_cells(rows[0])
    markdown = render(loaded)
    assert "| warm_overhead | generate 64×64 |" in markdown
    assert "not available" in markdown and "PASS" in markdown
    assert "python -m benchmarks --repeat 2" in markdown

    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\nafter\n", encoding="utf-8")
    assert render_main([str(path), "--doc", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "old" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert "generate 64×64" in text


def test_a_benchmark_with_its_own_table_is_shown_apart_in_the_console_and_the_markdown() -> None:
    """The real-size harness declares its own layout (s/forward, MFU …); the report asks every benchmark
    for its layout instead of knowing that one by name."""
    from rich.console import Console

    from benchmarks import real_size

    harness_row = Row("real_size", "Z-Image · full (reduced)", "not available", note=f"{NOT_AVAILABLE}: cpu")
    rows = [
        ratio_row("warm_overhead", "generate 64×64", [1.0, 1.02], [1.0, 1.0], Target("<=", 1.03)),
        harness_row,
        Row("cli", "imagestudio --help", "measured", value=0.2, unit="s", target=Target("<", 0.5)),
    ]
    markdown = render(results_document(rows, machine_info(), {"repeat": 2, "warmup": 1, "argv": []}))
    tables = [block for block in markdown.split("\n\n") if block.startswith("|")]
    assert len(tables) == 2
    comparison, harness = tables
    assert "| warm_overhead |" in comparison and "| cli |" in comparison and "Z-Image" not in comparison
    assert harness.splitlines()[0] == "| " + " | ".join(real_size.TABLE_HEADERS) + " |"
    assert "| Z-Image · full (reduced) |" in harness

    console = Console(record=True, width=200)
    print_table(rows, console)
    shown = console.export_text()
    assert shown.index("imagestudio benchmarks") < shown.index("real-size transformers")
    assert shown.index("warm_overhead") < shown.index("real-size transformers") < shown.index("Z-Image")


def test_replace_block_needs_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers here", "gpu", "x")
