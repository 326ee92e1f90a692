"""The SQLite history store: records, search, paging, deletion, recovery after a crash, schema version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from imagestudio.errors import ConfigError
from imagestudio.history.schema import SCHEMA_VERSION
from imagestudio.history.store import (
    STOPPED_DURING_JOB,
    HistoryStore,
    like_contains,
)
from imagestudio.jobs.model import JobError, JobState
from imagestudio.storage.saved_image import SavedImage


def add_done_job(store: HistoryStore, outputs: Path, job_id: str, prompts: list[str], at: float) -> list[str]:
    store.record_job(
        job_id, kind="generate", model="tiny-z-image", prompt=prompts[0], request={"p": prompts[0]}, seed=1,
        created_at=at,
    )  # fmt: skip
    store.mark_running(job_id, at + 1)
    images = []
    for index, prompt in enumerate(prompts):
        path = outputs / f"{job_id}-{index}.png"
        path.write_bytes(b"png")
        images.append(
            SavedImage(
                id=f"{job_id}i{index}",
                path=path,
                seed=index,
                width=64,
                height=48,
                metadata={"prompt": prompt, "seed": index},
            )
        )
    store.finish_job(
        job_id, JobState.DONE, at + 2, timings={"run_s": 1.0},
        extra={"memory_plan": {"profile": "full"}, "peak_memory_bytes": 123, "other": 1}, images=images,
    )  # fmt: skip
    return [image.id for image in images]


def test_job_lifecycle_is_recorded(store: HistoryStore, outputs: Path) -> None:
    [image_id] = add_done_job(store, outputs, "job1", ["кот в шляпе"], at=100.0)
    info = store.get_job("job1")
    assert info is not None
    assert (info.state, info.kind, info.model, info.prompt) == (
        JobState.DONE,
        "generate",
        "tiny-z-image",
        "кот в шляпе",
    )
    assert (info.created_at, info.started_at, info.finished_at) == (100.0, 101.0, 102.0)
    assert info.request == {"p": "кот в шляпе"}
    assert [image.id for image in info.images] == [image_id]
    details = store.job_details("job1")
    assert details == {
        "timings": {"run_s": 1.0},
        "memory_plan": {"profile": "full"},
        "peak_memory_bytes": 123,
        "extra": {"other": 1},
    }
    record = store.get_image(image_id)
    assert record is not None
    assert record.path == "job1-0.png"  # relative to the outputs folder
    assert (record.prompt, record.width, record.height, record.job_id) == ("кот в шляпе", 64, 48, "job1")
    assert store.image_file(image_id) == (outputs / "job1-0.png").resolve()
    assert store.get_job("nope") is None


def test_failed_job_keeps_its_error(store: HistoryStore) -> None:
    store.record_job("j", kind="generate", model="m", prompt="p", request={}, seed=None, created_at=1.0)
    error = JobError("model is missing", "model_not_available", 503, "model")
    store.finish_job("j", JobState.FAILED, 2.0, error=error)
    info = store.get_job("j")
    assert info is not None
    assert info.state is JobState.FAILED
    assert info.error == error


def test_search_is_case_insensitive_in_cyrillic_and_escapes_like(store: HistoryStore, outputs: Path) -> None:
    add_done_job(store, outputs, "a", ["Кот в шляпе", "100% cotton_shirt", "ЁЛКА"], at=10.0)
    add_done_job(store, outputs, "b", ["собака", "a dog"], at=20.0)

    def prompts(query: str) -> list[str]:
        return sorted(record.prompt for record in store.list_images(query).items)

    assert prompts("КОТ") == ["Кот в шляпе"]
    assert prompts("кот") == ["Кот в шляпе"]
    assert prompts("ёлка") == ["ЁЛКА"]
    assert prompts("DOG") == ["a dog"]
    # % and _ are literal, not wildcards
    assert prompts("100%") == ["100% cotton_shirt"]
    assert prompts("%") == ["100% cotton_shirt"]
    assert prompts("n_s") == ["100% cotton_shirt"]
    assert prompts("o_t") == []
    assert prompts("\\") == []
    assert like_contains("a%b_c\\") == "%a\\%b\\_c\\\\%"


def test_listing_is_newest_first_and_pages(store: HistoryStore, outputs: Path) -> None:
    add_done_job(store, outputs, "old", ["one", "two"], at=10.0)
    add_done_job(store, outputs, "new", ["three"], at=20.0)
    page = store.list_images(limit=2)
    assert page.total == 3
    assert [r.prompt for r in page.items] == ["three", "two"]
    rest = store.list_images(limit=2, offset=2)
    assert [r.prompt for r in rest.items] == ["one"]
    assert rest.total == 3
    assert store.list_images("t", limit=1).total == 2


def test_delete_removes_row_and_file(store: HistoryStore, outputs: Path) -> None:
    [first, second] = add_done_job(store, outputs, "j", ["a", "b"], at=1.0)
    path = outputs / "j-0.png"
    assert path.exists()
    assert store.delete_image(first) is True
    assert not path.exists()
    assert store.get_image(first) is None
    assert store.delete_image(first) is False
    assert store.image_file(second) is not None
    assert [image.id for image in store.get_job("j").images] == [second]


def test_rows_pointing_outside_outputs_are_never_served(
    store: HistoryStore, outputs: Path, tmp_path: Path
) -> None:
    [image_id] = add_done_job(store, outputs, "j", ["a"], at=1.0)
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("UPDATE images SET path = '../secret.txt' WHERE id = ?", (image_id,))
    assert store.image_file(image_id) is None
    assert store.delete_image(image_id) is True
    assert secret.exists()


def test_image_outside_outputs_is_refused(store: HistoryStore, tmp_path: Path) -> None:
    store.record_job("j", kind="generate", model="m", prompt="p", request={}, seed=1, created_at=1.0)
    stray = SavedImage("x", tmp_path / "stray.png", 1, 8, 8, {"prompt": "p"})
    with pytest.raises(ValueError):
        store.finish_job("j", JobState.DONE, 2.0, images=[stray])
    # the transaction was rolled back: the job is still open, no image row
    assert store.get_job("j").state is JobState.QUEUED
    assert store.list_images().total == 0


def test_reopening_fails_unfinished_jobs_and_keeps_images(tmp_path: Path, outputs: Path) -> None:
    db = tmp_path / "history.sqlite3"
    store = HistoryStore(db, outputs)
    [image_id] = add_done_job(store, outputs, "done", ["кот"], at=1.0)
    store.record_job("running", kind="generate", model="m", prompt="p", request={}, seed=1, created_at=2.0)
    store.mark_running("running", 3.0)
    store.record_job("queued", kind="generate", model="m", prompt="p", request={}, seed=1, created_at=4.0)
    store.close()

    reopened = HistoryStore(db, outputs)
    try:
        assert reopened.recovered == 2
        for job_id in ("running", "queued"):
            info = reopened.get_job(job_id)
            assert info.state is JobState.FAILED
            assert info.error.message == STOPPED_DURING_JOB
            assert info.finished_at is not None
        assert reopened.get_job("done").state is JobState.DONE
        assert [r.id for r in reopened.list_images().items] == [image_id]
        assert reopened.image_file(image_id) is not None
    finally:
        reopened.close()


def test_wal_mode_and_schema_version(store: HistoryStore) -> None:
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_database_is_a_config_error_and_left_alone(tmp_path: Path, outputs: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="newer"):
        HistoryStore(newer, outputs)
    assert newer.exists() and not list(tmp_path.glob("*.damaged-*"))


def test_a_nul_in_the_search_matches_only_prompts_containing_it(store: HistoryStore, outputs: Path) -> None:
    add_done_job(store, outputs, "a", ["кот", "собака"], at=10.0)
    assert store.list_images("\x00").total == 0
    # Word search reads a NUL as a separator, like any punctuation: the word after it still counts,
    # and only the prompt that has it matches (before, "%00" matched every prompt).
    assert store.list_images("\x00кот").total == 1
    assert store.list_images("\x00слон").total == 0
    assert store.list_images("%").total == 0
    assert store.list_images("_").total == 0
    assert store.list_images("кот").total == 1
