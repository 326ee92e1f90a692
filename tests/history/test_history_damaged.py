"""A damaged history database: moved aside with one log line, a new one made, the images listed again.

The images are real PNGs written the way the studio writes them (both metadata chunks), so the rebuild
reads exactly what a real outputs folder holds.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from imagestudio.history.store import HistoryStore
from imagestudio.storage.files import image_basename, write_new_file
from imagestudio.storage.metadata import png_bytes
from imagestudio.storage.saved_image import SavedImage

PROMPTS = ["кот в шляпе", "a red fox"]


def make_history(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """A history with two images from one job; returns (db, outputs, image ids)."""
    outputs = tmp_path / "outputs"
    db = tmp_path / "history.sqlite3"
    store = HistoryStore(db, outputs)
    store.record_job("job1", kind="generate", model="tiny-z-image", prompt=PROMPTS[0], request={}, seed=5,
                     created_at=1.0)  # fmt: skip
    images = []
    for seed, prompt in enumerate(PROMPTS, start=5):
        meta = {"prompt": prompt, "seed": seed, "width": 16, "height": 8, "model": "tiny-z-image",
                "steps": 2, "created_at": f"2026-01-0{seed}T10:00:00+00:00"}  # fmt: skip
        data = png_bytes(Image.new("RGB", (16, 8), "red"), meta)
        path = write_new_file(outputs, image_basename(prompt, seed), ".png", data)
        images.append(SavedImage(f"img{seed}", path, seed, 16, 8, meta))
    from imagestudio.jobs.model import JobState

    store.finish_job("job1", JobState.DONE, 2.0, images=images)
    # A PNG from another program (no metadata of ours) and a stray file are not listed.
    Image.new("RGB", (4, 4)).save(outputs / "other.png")
    (outputs / "notes.txt").write_text("x")
    store.close()
    return db, outputs, [image.id for image in images]


def truncate(db: Path) -> None:
    size = db.stat().st_size
    assert size >= 3 * 4096, size
    with db.open("r+b") as handle:
        handle.truncate(2 * 4096)


def garbage(db: Path) -> None:
    db.write_bytes(b"\x00garbage, not a database\xff" * 400)


def version_one_without_tables(db: Path) -> None:
    db.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 1")


@pytest.mark.parametrize("damage", [truncate, garbage, version_one_without_tables])
def test_a_damaged_database_is_moved_aside_and_the_images_listed_again(
    tmp_path: Path, damage, caplog: pytest.LogCaptureFixture
) -> None:
    db, outputs, _ = make_history(tmp_path)
    damage(db)
    damaged_bytes = db.read_bytes()

    with caplog.at_level(logging.WARNING, logger="imagestudio.history.store"):
        store = HistoryStore(db, outputs)
    try:
        assert store.damaged_copy is not None and store.damaged_copy.name.startswith(
            "history.sqlite3.damaged-"
        )
        # Kept for forensics (SQLite may have flipped its header to WAL while reading it).
        assert store.damaged_copy.stat().st_size == len(damaged_bytes)
        [line] = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
        assert str(db) in line and str(store.damaged_copy) in line and "\n" not in line

        page = store.list_images()
        assert page.total == 2 == store.rebuilt
        assert sorted(record.prompt for record in page.items) == sorted(PROMPTS)
        newest = page.items[0]
        assert newest.prompt == "a red fox" and newest.seed == 6 and (newest.width, newest.height) == (16, 8)
        assert newest.metadata["steps"] == 2 and newest.model == "tiny-z-image"
        assert store.image_file(newest.id) is not None
        assert store.list_images("КОТ").total == 1
    finally:
        store.close()

    # The new file is whole: opening it again changes nothing and moves nothing.
    reopened = HistoryStore(db, outputs)
    try:
        assert reopened.damaged_copy is None and reopened.list_images().total == 2
    finally:
        reopened.close()
    assert len(list(tmp_path.glob("history.sqlite3.damaged-*"))) == 1
