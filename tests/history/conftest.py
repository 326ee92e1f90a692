"""Fixtures the history tests share: an outputs folder and a history store over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestudio.history.store import HistoryStore


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    folder = tmp_path / "outputs"
    folder.mkdir()
    return folder


@pytest.fixture
def store(tmp_path: Path, outputs: Path) -> Iterator[HistoryStore]:
    history = HistoryStore(tmp_path / "history.sqlite3", outputs)
    yield history
    history.close()
