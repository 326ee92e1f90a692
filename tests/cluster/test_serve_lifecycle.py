"""``imagestudio serve`` with its private Ray runtime, as a user runs it (a real process on 127.0.0.1).

* Ray remembers the last cluster ``ray start`` ran on a machine (``<tmp>/ray/ray_current_cluster``), and
  plain ``ray.init()`` joins it even after it stopped; the private runtime must start its own.
* SIGTERM while both workers are busy stops like the single-PC server: the jobs are cancelled and
  recorded, Ray is shut down, and no process it started is left running.

Ray's temporary folder is a fresh short one (``RAY_TMPDIR``; socket paths must stay short) so nothing
here touches another Ray on the machine, and every process started is found by it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from imagestudio.history.store import HistoryStore
from imagestudio.jobs.model import JobState
from tests.api.conftest import BLOCKER, bound_socket
from tests.cluster.test_ray_backend import WAIT, settings_for
from tests.conftest import PYTHON, cli_env
from tests.helpers import wait_until


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="isr", dir="/tmp"))
    yield folder
    for process in ours(folder):  # only if a test failed half-way: leave nothing behind
        process.kill()
    shutil.rmtree(folder, ignore_errors=True)


def ours(folder: Path) -> list[psutil.Process]:
    """Live processes whose command line or environment names ``folder`` (Ray's own, and the server)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            named = str(folder) in " ".join(process.info["cmdline"] or ())
            if not named and process.pid != os.getpid():
                named = process.environ().get("RAY_TMPDIR") == str(folder)
            if named:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def ray_env(folder: Path) -> dict[str, str]:
    return cli_env(
        RAY_TMPDIR=str(folder),
        HOME=str(folder),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )


def leave_a_stopped_ray_start_behind(folder: Path) -> None:
    """What `imagestudio worker --head` (``ray start --head``) leaves once it has stopped."""
    with bound_socket() as probe:
        port = probe.getsockname()[1]
    ray = Path(sys.executable).parent / "ray"
    head = subprocess.Popen(
        [str(ray), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=1", "--include-dashboard=false"],
        env=ray_env(folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    marker = folder / "ray" / "ray_current_cluster"
    wait_until(lambda: marker.is_file() or head.poll() is not None, WAIT, "ray start to start")
    os.killpg(head.pid, signal.SIGKILL)  # stopped, as after a reboot: Ray's processes are gone
    head.wait(30)
    for process in ours(folder):
        process.kill()
    wait_until(lambda: not ours(folder), 60, "ray start's processes to go")
    assert marker.read_text().strip() == f"127.0.0.1:{port}"


def test_serve_starts_its_own_ray_and_sigterm_while_busy_leaves_nothing_running(
    ray_tmp: Path, shared_models_dir: Path, tmp_path: Path
) -> None:
    leave_a_stopped_ray_start_behind(ray_tmp)
    settings = settings_for(tmp_path, shared_models_dir)
    config = tmp_path / "serve.yaml"
    config.write_text(
        (tmp_path / "config.yaml").read_text()
        + "cluster:\n  backend: ray\n  local_workers: 2\n  poll_s: 0.5\n  worker_wait_s: 120\n",
        encoding="utf-8",
    )
    with bound_socket() as probe:
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    serve = subprocess.Popen(
        [PYTHON, "-m", "imagestudio", "serve", "--port", str(port), "--config", str(config)],
        env=ray_env(ray_tmp), stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    started: dict[int, psutil.Process] = {}
    try:
        url = f"http://127.0.0.1:{port}"

        def jobs_running(http: httpx.Client, ids: list[str]) -> bool:
            if serve.poll() is not None:
                raise AssertionError(f"serve exited with {serve.returncode}: {tail(log)}")
            try:
                states = [http.get(f"/api/jobs/{job_id}").json()["state"] for job_id in ids]
            except httpx.TransportError:
                return False
            return states == ["running", "running"]

        with httpx.Client(base_url=url, timeout=60) as http:
            wait_until(lambda: _healthy(http, serve, log), WAIT, "the server")
            ids = [
                http.post("/api/jobs", json={**BLOCKER, "prompt": f"busy {i}"}).json()["id"] for i in (1, 2)
            ]
            wait_until(lambda: jobs_running(http, ids), WAIT, "both workers busy")
        for process in [psutil.Process(serve.pid), *psutil.Process(serve.pid).children(recursive=True)]:
            started[process.pid] = process
        for process in ours(ray_tmp):
            started[process.pid] = process
        assert len(started) >= 5, "the server, Ray's own processes and two workers"

        serve.send_signal(signal.SIGTERM)
        # A graceful stop: uvicorn finishes, then lets the signal end the process as it would have
        # (-15); Ray's crash handler made it an abort (-6) and skipped the shutdown.
        assert serve.wait(60) in (0, -signal.SIGTERM), tail(log)
        assert "Traceback" not in log.read_text()
        wait_until(lambda: not [p for p in started.values() if _alive(p)], 30, "every process to end")
        assert not ours(ray_tmp)
    finally:
        if serve.poll() is None:
            serve.kill()
    history = HistoryStore(settings.history_db, settings.outputs_dir, owner=False)
    try:
        for job_id in ids:
            assert history.get_job(job_id).state is JobState.CANCELLED
    finally:
        history.close()


def _healthy(http: httpx.Client, serve: subprocess.Popen, log: Path) -> bool:
    if serve.poll() is not None:
        raise AssertionError(f"serve exited with {serve.returncode}: {tail(log)}")
    try:
        return http.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def tail(log: Path) -> str:
    """The server's log without its readiness polls."""
    return "\n".join(line for line in log.read_text().splitlines() if "/healthz" not in line)[-4000:]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_to_a_worker_head_stops_the_ray_start_it_ran(ray_tmp: Path, tmp_path: Path) -> None:
    """``imagestudio worker --head`` runs ``ray start --block``; stopping the worker stops it too."""
    with bound_socket() as probe:
        port = probe.getsockname()[1]
    worker = subprocess.Popen(
        [PYTHON, "-m", "imagestudio", "worker", "--head", f"--port={port}", "--node-ip=127.0.0.1",
         "--workers=1"],
        env=ray_env(ray_tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        marker = ray_tmp / "ray" / "ray_current_cluster"
        wait_until(lambda: marker.is_file() or worker.poll() is not None, WAIT, "the head to start")
        assert worker.poll() is None
        started = {process.pid: process for process in ours(ray_tmp)}
        assert any("start" in " ".join(p.cmdline()) for p in started.values() if _alive(p)), "ray start"
        worker.send_signal(signal.SIGTERM)
        worker.wait(90)
        wait_until(lambda: not [p for p in started.values() if _alive(p)], 60, "ray start's processes to end")
        assert not ours(ray_tmp)
    finally:
        if worker.poll() is None:
            worker.kill()
