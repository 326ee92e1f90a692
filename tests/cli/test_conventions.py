"""What a command line is expected to do: --version, shell completion, --json errors, a useful log."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import bound_socket
from tests.conftest import PYTHON, cli_env
from tests.helpers import run_cli, wait_until

#: The app run under its installed name (completion keys its environment variable on that name).
AS_INSTALLED = "from imagestudio.cli import app; app(prog_name='imagestudio')"


def test_version_without_loading_torch(app_home: Path) -> None:
    from imagestudio import __version__

    probe = (
        "import sys\nfrom imagestudio.cli import app\n"
        "try:\n    app(['--version'])\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print('HEAVY', [m for m in ('torch', 'diffusers') if m in sys.modules], 'CODE', code)\n"
    )
    done = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, env=cli_env(), check=False)
    assert done.stdout.splitlines() == [f"imagestudio {__version__}", "HEAVY [] CODE 0"], done.stderr


def test_shell_completion_completes_commands_and_options(app_home: Path) -> None:
    script = subprocess.run(
        [PYTHON, "-c", AS_INSTALLED, "--show-completion", "bash"],
        capture_output=True, text=True, env=cli_env(), check=False,
    )  # fmt: skip
    assert script.returncode == 0, script.stderr
    assert "_IMAGESTUDIO_COMPLETE=complete_bash" in script.stdout
    assert "generate" in completions("imagestudio", "gen")
    assert "--steps" in completions("imagestudio", "generate", "--ste")


def completions(*words: str) -> list[str]:
    """What the app offers for the last of ``words``, asked the way bash's completion script asks."""
    env = cli_env(
        _IMAGESTUDIO_COMPLETE="complete_bash", COMP_WORDS=" ".join(words), COMP_CWORD=str(len(words) - 1)
    )
    done = subprocess.run([PYTHON, "-c", AS_INSTALLED], capture_output=True, text=True, env=env, check=False)
    return done.stdout.split()


def test_json_errors_are_json_on_stdout(config_file: Path, tmp_path: Path) -> None:
    """A script that asked for --json parses stdout; its errors must be there too, as an object."""
    done = run_cli("generate", "--model", "tiny-z-image", "  ", "--json", "--config", str(config_file))
    assert done.returncode == 2 and done.stderr == ""
    payload = json.loads(done.stdout)
    assert payload == {
        "error": {"message": "prompt is empty", "type": "invalid_request_error", "param": "prompt",
                  "code": "prompt_empty"},
        "exit_code": 2,
    }  # fmt: skip

    missing = tmp_path / "missing.png"
    done = run_cli("edit", "make it snow", "-i", str(missing), "--json", "--config", str(config_file))
    assert done.returncode == 2 and done.stderr == ""
    error = json.loads(done.stdout)["error"]
    assert str(missing.name) in error["message"] and error["type"] == "invalid_request_error"

    done = run_cli("models", "verify", "nope", "--json", "--config", str(config_file))
    assert done.returncode == 2 and "nope" in json.loads(done.stdout)["error"]["message"]
    # Without --json: one line on stderr, as before.
    done = run_cli("generate", "--model", "tiny-z-image", "  ", "--config", str(config_file))
    assert done.returncode == 2 and done.stdout == "" and done.stderr.strip() == "error: prompt is empty"


@pytest.mark.slow
def test_serve_logs_each_failed_request_by_default(config_file: Path, tmp_path: Path) -> None:
    with bound_socket() as probe:
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [PYTHON, "-m", "imagestudio", "serve", "--port", str(port), "--config", str(config_file)],
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert process.poll() is None, log.read_text()[-2000:]
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        # Generous: on a busy 2-core machine the imports alone can take minutes.
        wait_until(healthy, timeout=300, what="the server to start")
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/api/nothing-here?q=secret").status_code == 404
            bad = client.post("/v1/images/generations", json={"prompt": "x", "size": "big"})
            assert bad.status_code == 400
            assert client.get("/v1/models").status_code == 200
        wait_until(lambda: log.read_text().count(" -> ") >= 2, what="two access log lines")
        text = log.read_text()
    finally:
        process.terminate()
        process.wait(30)
    assert "GET /api/nothing-here -> 404" in text and "secret" not in text
    assert "POST /v1/images/generations -> 400" in text
    assert "/v1/models" not in text
