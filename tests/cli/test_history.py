"""Images made on the command line appear in History, recorded by the same recorder as the server's jobs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.config import load_settings
from imagestudio.history.store import HistoryStore
from imagestudio.jobs.model import JobState
from imagestudio.storage.kept_inputs import input_shas
from tests.cli.test_cli import run_cli

pytestmark = pytest.mark.slow


def open_history(config_file: Path) -> HistoryStore:
    settings = load_settings(config_file)
    # Not the owner: opening must not touch the rows under test.
    return HistoryStore(settings.history_db, settings.outputs_dir, owner=False)


def test_generate_and_edit_appear_in_history_beside_a_running_servers_job(
    config_file: Path, tmp_path: Path
) -> None:
    settings = load_settings(config_file)
    history = HistoryStore(settings.history_db, settings.outputs_dir)
    # A job a running server has queued: the CLI opening the same history must leave it alone.
    history.record_job(
        "server-job", kind="generate", model="tiny-z-image", prompt="p", request={}, seed=1, created_at=1.0
    )
    history.close()

    done = run_cli(
        "generate", "--model", "tiny-z-image", "кот в шляпе", "-W", "64", "-H", "64", "--steps", "2",
        "--seed", "5", config=config_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    generated = Path(done.stdout.strip())
    picture = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(picture)
    done = run_cli(
        "edit", "-m", "tiny-qwen-image-edit", "-i", str(picture), "put a hat on it", "--steps", "2",
        "--seed", "2", "--true-cfg", "1", config=config_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    edited = Path(done.stdout.strip())

    history = open_history(config_file)
    try:
        page = history.list_images()
        by_path = {settings.outputs_dir / item.path: item for item in page.items}
        assert set(by_path) == {generated, edited}
        made = by_path[generated]
        assert (made.prompt, made.seed, made.model) == ("кот в шляпе", 5, "tiny-z-image")
        assert [item.id for item in history.list_images("шляпе").items] == [made.id]
        for item, kind in ((made, "generate"), (by_path[edited], "edit")):
            assert item.job_id is not None
            job = history.get_job(item.job_id)
            assert job is not None
            assert (job.kind, job.state) == (kind, JobState.DONE)
        # The edit's input picture is kept for History, as for an edit made in the browser.
        [sha] = input_shas(by_path[edited].metadata)
        kept = history.input_file(sha)
        assert kept is not None and kept.is_file()
        server_job = history.get_job("server-job")
        assert server_job is not None and server_job.state is JobState.QUEUED
    finally:
        history.close()


def test_out_elsewhere_is_not_recorded(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    done = run_cli(
        "generate", "--model", "tiny-z-image", "fox", "-W", "32", "-H", "32", "--steps", "1",
        "--out", str(out), config=config_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == out
    history = open_history(config_file)
    try:
        assert history.list_images().total == 0
    finally:
        history.close()


def test_a_failed_job_is_one_line_and_a_failed_row(config_file: Path, app_home: Path) -> None:
    # The model's folder exists but holds no weights: the studio refuses it when it loads the model.
    broken = app_home / "broken-model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{}", encoding="utf-8")
    config = app_home / "broken.yaml"
    config.write_text(
        config_file.read_text(encoding="utf-8") + f"models:\n  z-image-turbo:\n    path: {broken}\n",
        encoding="utf-8",
    )
    done = run_cli("generate", "--model", "z-image-turbo", "fox", "--steps", "1", config=config)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    # (a warning about this machine's RAM for the real model may come first)
    *_, line = done.stderr.strip().splitlines()
    assert done.stderr.count(line.removeprefix("error: ")) == 1
    with sqlite3.connect(load_settings(config).history_db) as conn:
        rows = conn.execute("SELECT kind, model, state, error_message FROM jobs").fetchall()
    [(kind, model, state, message)] = rows
    assert (kind, model, state) == ("generate", "z-image-turbo", "failed")
    assert line == f"error: {message}"
