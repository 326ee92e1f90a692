"""A real ``imagestudio serve`` process killed with SIGKILL mid-job, then started again."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from imagestudio.history.store import HistoryStore
from imagestudio.jobs.events import STOPPED_DURING_JOB
from imagestudio.jobs.model import JobState
from tests.api.conftest import BLOCKER, bound_socket, open_png, sse_events
from tests.conftest import PYTHON, cli_env
from tests.helpers import wait_until


def start_serve(config: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with bound_socket() as probe:
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [PYTHON, "-m", "imagestudio", "serve", "--port", str(port), "--config", str(config)],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        # Generous: on a busy 2-core machine the imports alone can take minutes.
        wait_until(healthy, timeout=300, what="the server to start")
    except BaseException:
        process.kill()  # a server that never answered must not outlive the test
        process.wait(30)
        raise
    return process, url


@pytest.mark.slow
def test_killed_server_fails_its_unfinished_jobs_and_keeps_finished_images(config_file, tmp_path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(
        config_file.read_text() + "generation:\n  default_width: 64\n  default_height: 64\n", encoding="utf-8"
    )
    log = tmp_path / "serve.log"
    first, url = start_serve(config, log)
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            kept = http.post(
                "/api/jobs", json={"kind": "generate", "model": "tiny-z-image", "prompt": "кот", "steps": 2}
            )
            kept_id = kept.json()["id"]
            [done] = [
                data for kind, data in sse_events(http, f"/api/jobs/{kept_id}/events") if kind == "done"
            ]
            image_id = done["images"][0]["id"]

            running_id = http.post("/api/jobs", json=BLOCKER).json()["id"]
            queued_id = http.post("/api/jobs", json={**BLOCKER, "prompt": "waiting"}).json()["id"]
            sse_events(http, f"/api/jobs/{running_id}/events", until=lambda kind, _: kind == "step")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()

    # What a server killed inside a write leaves: its temporary file (named with its pid). The next
    # start removes it.
    leftover = config_file.parent / "outputs" / f".imagestudio-{first.pid}-half.tmp"
    leftover.write_bytes(b"\x89PNG half")
    second, url = start_serve(config, log)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            for job_id in (running_id, queued_id):
                job = http.get(f"/api/jobs/{job_id}").json()
                assert job["state"] == "failed", job
                assert job["error"]["message"] == "server stopped during the job"
                events = sse_events(http, f"/api/jobs/{job_id}/events")
                assert [kind for kind, _ in events] == ["failed"]
            assert http.get(f"/api/jobs/{kept_id}").json()["state"] == "done"
            history = http.get("/api/history").json()
            assert [item["id"] for item in history["items"]] == [image_id]
            assert history["items"][0]["prompt"] == "кот"
            assert open_png(http.get(f"/api/images/{image_id}").content).size == (64, 64)
        # Only finished images in the outputs folder: nothing partial, no temporary file left over.
        outputs = config_file.parent / "outputs"
        assert [p.suffix for p in outputs.iterdir()] == [".png"], list(outputs.iterdir())
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after shutting down
    finally:
        if second.poll() is None:
            second.kill()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def test_stopping_the_server_cancels_the_running_job_and_records_it(serve) -> None:
    live = serve()
    with live.client() as http:
        job_id = http.post("/api/jobs", json=BLOCKER).json()["id"]
        sse_events(http, f"/api/jobs/{job_id}/events", until=lambda kind, _: kind == "step")
    live.stop()  # what SIGTERM does: uvicorn's shutdown runs the app's lifespan exit
    assert not live.services.queue.worker_alive
    settings = live.services.settings
    reopened = HistoryStore(settings.history_db, settings.outputs_dir)
    try:
        assert reopened.recovered == 0  # nothing was left "running"
        job = reopened.get_job(job_id)
        assert job.state is JobState.CANCELLED
        assert job.error.message == STOPPED_DURING_JOB
    finally:
        reopened.close()
