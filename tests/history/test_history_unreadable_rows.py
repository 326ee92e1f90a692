"""A History row whose stored JSON cannot be read (garbage, not an object, nested 300 deep as an older
version stored a client's fields) is listed as damaged; the other rows and every listing still work."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from imagestudio.history.store import DAMAGED, HistoryStore
from tests.history.test_history import add_done_job


def nested(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "stored",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"client": {"deep": nested(300)}}),
        "[" * 100_000 + "]" * 100_000,  # deeper than Python's own parser goes
    ],
    ids=["garbage", "a list", "300 deep", "100000 deep"],
)
def test_an_unreadable_row_is_listed_as_damaged(
    store: HistoryStore, outputs: Path, tmp_path: Path, stored: str
) -> None:
    [good] = add_done_job(store, outputs, "good", ["a fine cat"], at=100.0)
    [bad] = add_done_job(store, outputs, "bad", ["a poisoned cat"], at=200.0)
    with sqlite3.connect(tmp_path / "history.sqlite3") as conn:
        conn.execute("UPDATE images SET metadata_json = ? WHERE id = ?", (stored, bad))
        conn.execute(
            "UPDATE jobs SET request_json = ?, timings_json = ? WHERE id = ?", (stored, stored, "bad")
        )
    conn.close()

    page = store.list_images()
    assert [item.id for item in page.items] == [bad, good]
    damaged, fine = page.items
    assert set(damaged.metadata) == {DAMAGED} and "cannot be read" in damaged.metadata[DAMAGED]
    assert damaged.prompt == "a poisoned cat"
    assert fine.metadata == {"prompt": "a fine cat", "seed": 0}
    assert store.list_images("poisoned").items[0].id == bad
    assert set(store.get_image(bad).metadata) == {DAMAGED}

    job = store.get_job("bad")
    assert set(job.request) == {DAMAGED}
    assert set(job.images[0].metadata) == {DAMAGED}
    assert set(store.job_details("bad")["timings"]) == {DAMAGED}
    assert store.get_job("good").request == {"p": "a fine cat"}
    assert store.delete_image(bad)
