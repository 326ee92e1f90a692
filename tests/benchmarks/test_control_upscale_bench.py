"""The control-overhead and upscale-throughput benchmark, run for real at two repeats: well-formed rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.context import BenchContext

from benchmarks import control_upscale


@pytest.mark.slow
def test_control_and_upscale_rows(tmp_path: Path) -> None:
    rows = control_upscale.run(BenchContext(workdir=tmp_path, repeat=2, warmup=0))
    assert [row.status for row in rows] == ["measured", "measured"], [row.note for row in rows]
    control, upscale = rows
    assert control.value is not None and control.value > 0
    assert control.app is not None and control.app.n == 2
    assert upscale.value is not None and upscale.value > 0
    assert "s/MP in tiles" in upscale.note
