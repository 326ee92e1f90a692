"""docs/memory.md's prediction tables are the planner's output, not hand-copied numbers."""

from __future__ import annotations

from benchmarks.memory_table import BEGIN, END, generated_section

from tests.conftest import REPO_ROOT


def test_docs_memory_tables_match_the_planner() -> None:
    text = (REPO_ROOT / "docs" / "memory.md").read_text(encoding="utf-8")
    current = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert current == generated_section(), "run: python -m benchmarks.memory_table docs/memory.md"
    assert "predictions, not measurements" in text
