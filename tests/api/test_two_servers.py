"""A second ``imagestudio serve`` on the same history is refused in one line while the first runs, and
leaves the first server's running job alone."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.api.conftest import BLOCKER, bound_socket, sse_events
from tests.api.test_restart import start_serve
from tests.conftest import PYTHON, cli_env


@pytest.mark.slow
def test_a_second_server_on_the_same_history_is_refused_naming_the_first(config_file, tmp_path) -> None:
    log = tmp_path / "serve.log"
    first, url = start_serve(config_file, log)
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            running_id = http.post("/api/jobs", json=BLOCKER).json()["id"]
            sse_events(http, f"/api/jobs/{running_id}/events", until=lambda kind, _: kind == "step")
            with bound_socket() as probe:
                port = probe.getsockname()[1]
            second = subprocess.run(
                [PYTHON, "-m", "imagestudio", "serve", "--port", str(port), "--config", str(config_file)],
                env=cli_env(),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert second.returncode == 2, second.stderr
            assert "Traceback" not in second.stderr
            [line] = second.stderr.strip().splitlines()
            assert f"another imagestudio server (pid {first.pid}, {url})" in line
            assert "storage.history_db" in line
            job = http.get(f"/api/jobs/{running_id}").json()
            assert job["state"] == "running", job
            assert http.delete(f"/api/jobs/{running_id}").status_code == 200
    finally:
        first.terminate()
        first.wait(60)
