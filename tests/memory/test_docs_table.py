"""docs/memory.md's prediction tables are the planner's output, not hand-copied numbers."""

from __future__ import annotations

from benchmarks.memory_table import (
    BEGIN,
    END,
    VARIANTS_BEGIN,
    VARIANTS_END,
    generated_section,
    generated_variants_section,
)

from tests.conftest import REPO_ROOT


def test_docs_memory_tables_match_the_planner() -> None:
    text = (REPO_ROOT / "docs" / "memory.md").read_text(encoding="utf-8")
    current = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert current == generated_section(), "run: python -m benchmarks.memory_table docs/memory.md"
    assert "predictions, not measurements" in text


def test_docs_variant_tables_match_the_planner() -> None:
    text = (REPO_ROOT / "docs" / "memory.md").read_text(encoding="utf-8")
    current = text[text.index(VARIANTS_BEGIN) : text.index(VARIANTS_END) + len(VARIANTS_END)]
    assert current == generated_variants_section(), "run: python -m benchmarks.memory_table docs/memory.md"
    for gb in (8, 12, 16, 24):
        for ram in (16, 32, 64):
            assert f"| {gb} GB | {ram} GB |" in current
