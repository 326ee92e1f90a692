"""``python -m benchmarks.quant`` on the tiny Z-Image: a row per variant, measured (not judged) figures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks import quant


@pytest.mark.slow
def test_every_variant_gets_a_measured_row(shared_models_dir: Path, tmp_path: Path) -> None:
    rows = {r.variant: r for r in quant.measure(("tiny-z-image",), shared_models_dir, tmp_path)}
    assert list(rows) == ["bf16", "gguf-q8_0", "gguf-q4_0", "sdnq-int8", "sdnq-uint4"]
    reference = rows["bf16"]
    assert reference.transformer_rel_error == 0.0 and math.isinf(reference.image_psnr_db)
    for name, row in rows.items():
        assert row.load_s > 0 and row.peak_rss_mb > 0 and row.disk_bytes > 0, name
        if name != "bf16":
            assert 0 < row.transformer_rel_error < 1, name  # changed, and not noise
            assert row.disk_bytes < reference.disk_bytes, name
    assert rows["gguf-q8_0"].transformer_rel_error < rows["gguf-q4_0"].transformer_rel_error
    assert rows["gguf-q4_0"].disk_bytes < rows["gguf-q8_0"].disk_bytes
    table = quant.markdown(list(rows.values()))
    assert table.count("\n") == len(rows) + 1 and "| tiny-z-image | gguf-q4_0 |" in table
