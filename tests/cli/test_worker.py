"""``imagestudio worker``: the ``ray start`` it would run, its checks, and its one-line failures.

Nothing is started here (``--dry-run``, and the failure explanations are fed Ray's own messages): a
real ``ray start`` would bind to the machine's network address, which tests never do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagestudio.cli import app
from imagestudio.cluster.boxes import explain_failure, start_command
from imagestudio.errors import ConfigError

runner = CliRunner()


def test_a_box_joins_the_head_with_its_slots_and_the_token(tmp_path: Path) -> None:
    token, config = tmp_path / "auth_token", tmp_path / "box.yaml"
    token.write_text("secret-token", encoding="utf-8")
    config.write_text("{}", encoding="utf-8")
    args = ["worker", "--connect", "10.1.2.3:6379", "--workers", "2", "--dry-run"]
    result = runner.invoke(app, [*args, "--token-file", str(token), "--config", str(config)])
    assert result.exit_code == 0, result.output
    shown = result.stdout.strip()
    assert "start --address 10.1.2.3:6379" in shown and "--block" in shown
    assert "'" + json.dumps({"imagestudio_worker": 2}) + "'" in shown
    assert "RAY_AUTH_MODE=token" in shown
    assert f"RAY_AUTH_TOKEN_PATH={token.resolve()}" in shown
    assert f"IMAGESTUDIO_WORKER_CONFIG={config.resolve()}" in shown
    assert "secret-token" not in result.output
    assert "Python" in result.stderr and "Ray 2." in result.stderr


def test_the_head_node_command() -> None:
    command = start_command(connect=None, head_port=6380, slots=0, gpus=0)
    assert command.argv[1:5] == ["start", "--head", "--port", "6380"]
    assert json.loads(command.argv[command.argv.index("--resources") + 1]) == {"imagestudio_worker": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dry-run"], "--connect HEAD:PORT, or --head"),
        (["--connect", "no-port", "--dry-run"], "HOST:PORT"),
        (["--connect", "h:1", "--token-file", "/nonexistent/token", "--dry-run"], "is not a file"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["worker", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_version_mismatch_is_explained_with_this_box_s_versions() -> None:
    ray_says = (
        "RuntimeError: Version mismatch: The cluster was started with:\n    Ray: 2.59.0\n    Python: 3.12.1\n"
        "This process on node 10.0.0.7 was started with:\n    Ray: 2.60.0\n    Python: 3.11.7\n"
    )
    reason = explain_failure(ray_says, "3.11.7", "2.60.0")
    assert reason is not None and "Python 3.11.7, Ray 2.60.0" in reason and "same" in reason
    assert explain_failure("something else entirely", "3.11.7", "2.60.0") is None


def test_both_or_neither_place_is_refused() -> None:
    with pytest.raises(ConfigError):
        start_command(connect="h:1", head_port=6379, slots=1, gpus=0)
