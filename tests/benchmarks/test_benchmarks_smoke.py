"""Each benchmark, run for real at one repeat: it produces well-formed rows (figures are not judged here).

The models are built once per test session into a shared work folder: the tiny pipelines and the
``small`` random-weight Z-Image (the benchmark's ``large`` one is the same code at ~430 MB).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.context import BenchContext
from benchmarks.features import edit_missing, keep_in_ram_missing
from benchmarks.report import NOT_AVAILABLE, Row

from benchmarks import cli_speed, cold_start, load_memory, overhead, switch


@pytest.fixture(scope="session")
def bench_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


def context(workdir: Path, **options: object) -> BenchContext:
    defaults: dict[str, object] = {"repeat": 1, "warmup": 0, "model_size": "small"}
    return BenchContext(workdir=workdir, **{**defaults, **options})  # type: ignore[arg-type]


def assert_measured(row: Row, samples: int = 1) -> None:
    assert row.status == "measured", row.note
    assert row.value is not None and row.value > 0
    assert row.app is not None and row.app.n == samples


def test_warm_overhead(bench_workdir: Path) -> None:
    rows = overhead.run(context(bench_workdir, repeat=2, overhead_cases=[(32, 1)]))
    generate, fixed_costs, edit = rows
    assert generate.case == "generate 32×32, 1 steps"
    assert_measured(generate, samples=2)
    assert generate.baseline is not None and generate.baseline.n == 2
    pairs = zip(generate.samples["app"], generate.samples["baseline"], strict=True)
    ratios = [app / plain for app, plain in pairs]
    assert generate.spread is not None
    assert generate.spread.median == pytest.approx(sum(ratios) / 2)
    assert fixed_costs.status == "measured"
    pieces = fixed_costs.extra["pieces_s"]
    assert set(pieces) == {
        "request checks",
        "manager lock",
        "NaN/black check",
        "metadata chunks",
        "fsync'd atomic write",
    }
    assert fixed_costs.value == pytest.approx(sum(pieces.values()))
    if edit_missing():
        assert edit.status == "not available"
        assert edit.note.startswith(NOT_AVAILABLE)
    else:
        assert_measured(edit, samples=2)
    assert not (bench_workdir / "outputs" / overhead.NAME).exists()


def test_cli_speed(bench_workdir: Path) -> None:
    rows = cli_speed.run(context(bench_workdir))
    assert [row.case for row in rows] == ["imagestudio --help", "imagestudio models list"]
    for row in rows:
        assert_measured(row)
        assert row.unit == "s" and row.baseline is not None
        assert row.extra["cpu_s"]["n"] == 1 and row.extra["cpu_s"]["median"] > 0


@pytest.mark.slow
def test_cold_start(bench_workdir: Path) -> None:
    [row] = cold_start.run(context(bench_workdir))
    # Measured (not failed) also means both processes wrote identical pixels and the app its metadata.
    assert_measured(row)
    assert len(row.samples["app_cpu"]) == len(row.samples["baseline_cpu"]) == 1
    assert row.extra["cpu_ratio"]["median"] == pytest.approx(
        row.samples["app_cpu"][0] / row.samples["baseline_cpu"][0]
    )


def test_model_switch(bench_workdir: Path) -> None:
    rows = switch.run(context(bench_workdir))
    assert len(rows) == 5
    for row in rows[:3]:
        assert_measured(row)
    if keep_in_ram_missing():
        assert [row.status for row in rows[3:]] == ["not available", "not available"]
        assert rows[4].target is not None and rows[4].passed is None
    else:
        for row in rows[3:]:
            assert_measured(row)


@pytest.mark.slow
def test_load_memory(bench_workdir: Path) -> None:
    rows = load_memory.run(context(bench_workdir, load_storages=("float32",)))
    total, anonymous = rows
    for row in rows:
        assert_measured(row)
        assert row.sample_unit == "B"
        weights = row.samples["weights_bytes"][0]
        assert row.value == pytest.approx(row.samples["app"][0] / weights)
    # fp32 files loaded as bf16: the loaded weights are half the files' bytes.
    folder = bench_workdir / "models" / "small-z-image-float32"
    on_disk = sum(p.stat().st_size for p in folder.rglob("*.safetensors"))
    assert total.samples["weights_bytes"][0] == pytest.approx(on_disk / 2, rel=0.01)
    assert "peak RSS" in total.case and "anonymous" in anonymous.case
