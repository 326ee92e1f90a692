"""``imagestudio serve`` meeting faults: a damaged history, an unwritable outputs folder, a full disk."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import assert_error_shape, bound_socket, sse_events
from tests.api.test_restart import start_serve
from tests.conftest import PYTHON, cli_env
from tests.faults.disks import fill, tmpfs

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def serve_config(config_file: Path, tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "serve.yaml"
    config.write_text(
        config_file.read_text() + "generation:\n  default_width: 64\n  default_height: 64\n" + extra,
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
def test_a_damaged_history_is_moved_aside_and_the_images_stay_listed(
    config_file: Path, app_home: Path, tmp_path: Path
) -> None:
    config = serve_config(config_file, tmp_path)
    log = tmp_path / "serve.log"
    first, url = start_serve(config, log)
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            job = http.post("/api/jobs", json={"kind": "generate", "model": "tiny-z-image", "prompt": "кот"})
            [done] = [d for k, d in sse_events(http, f"/api/jobs/{job.json()['id']}/events") if k == "done"]
            assert done["images"]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    db = app_home / "history.sqlite3"
    assert db.exists()
    for companion in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        companion.unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 200)

    second, url = start_serve(config, log)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            history = http.get("/api/history").json()
            assert [item["prompt"] for item in history["items"]] == ["кот"]
            image = http.get(history["items"][0]["url"])
            assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
            assert http.get("/api/history", params={"q": "\x00"}).json()["total"] == 0
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    [line] = [ln for ln in log.read_text().splitlines() if "is damaged" in ln]
    assert TIMESTAMP.match(line), line  # the server's log lines say when
    assert "Traceback" not in log.read_text()
    assert len(list(app_home.glob("history.sqlite3.damaged-*"))) == 1


def test_an_unwritable_outputs_folder_is_refused_at_start(
    config_file: Path, app_home: Path, tmp_path: Path
) -> None:
    a_file = tmp_path / "outputs-is-a-file"
    a_file.write_text("x")
    config = tmp_path / "bad.yaml"
    config.write_text(
        config_file.read_text().replace(str(app_home / "outputs"), str(a_file)), encoding="utf-8"
    )
    with bound_socket() as probe:
        port = probe.getsockname()[1]
    done = subprocess.run(
        [PYTHON, "-m", "imagestudio", "serve", "--port", str(port), "--config", str(config)],
        capture_output=True, text=True, env=cli_env(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line == f"error: cannot write images to {a_file}: it is a file, not a folder"


def test_a_full_disk_is_507_naming_the_folder_and_the_queue_keeps_running(serve, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", size_kb=64) as disk:
        outputs = disk / "outputs"
        live = serve(storage={"outputs_dir": str(outputs)})
        filler = fill(disk, leave_bytes=2048)
        body = {"model": "tiny-z-image", "prompt": "кот", "size": "64x64"}
        with live.client() as http:
            response = http.post("/v1/images/generations", json={**body, "n": 2})
            error = assert_error_shape(response, 507)
            assert error["type"] == "insufficient_storage"
            assert str(outputs) in error["message"] and "disk is full" in error["message"]
            assert response.headers["x-should-retry"] == "false"
            assert sorted(p.name for p in outputs.iterdir()) == []  # nothing half-written, no temp file
            filler.unlink()
            again = http.post("/v1/images/generations", json=body)
            assert again.status_code == 200, again.text
            [png] = list(outputs.iterdir())
            assert png.suffix == ".png"
        assert live.services.queue.worker_alive
