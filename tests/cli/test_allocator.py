"""PyTorch's CUDA allocator setting: one rule for every command, ``serve`` included."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagestudio.cli import app
from imagestudio.cli.allocator import EXPANDABLE_SEGMENTS, use_expandable_segments

ALLOC = "PYTORCH_CUDA_ALLOC_CONF"


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_the_cli_asks_for_expandable_segments_unless_the_user_chose(platform: str) -> None:
    env: dict[str, str] = {}
    use_expandable_segments(env, platform)
    assert env == {ALLOC: EXPANDABLE_SEGMENTS}
    mine = {ALLOC: "max_split_size_mb:256"}
    use_expandable_segments(mine, platform)
    assert mine == {ALLOC: "max_split_size_mb:256"}
    generic = {"PYTORCH_ALLOC_CONF": "expandable_segments:False"}
    use_expandable_segments(generic, platform)
    assert generic == {"PYTORCH_ALLOC_CONF": "expandable_segments:False"}


def test_windows_builds_of_torch_are_not_asked_for_expandable_segments() -> None:
    env: dict[str, str] = {}
    use_expandable_segments(env, "win32")
    assert env == {}


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something already listens on: ``serve`` stops with exit 2 before it starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run_serve(port: int, config: Path) -> None:
    """``imagestudio serve`` in this process, as an embedding program or a test runs the app (no main())."""
    result = CliRunner().invoke(app, ["serve", "--port", str(port), "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "already in use" in result.stderr


@pytest.mark.parametrize(
    ("platform", "user_setting", "expected"),
    [
        # A user's own (generic) allocator setting is kept, and nothing is added beside it.
        ("linux", "expandable_segments:False", None),
        # Windows builds of torch do not support expandable segments: nothing is set.
        ("win32", None, None),
        ("linux", None, EXPANDABLE_SEGMENTS),
    ],
)
def test_serve_follows_the_allocator_rule(
    platform: str,
    user_setting: str | None,
    expected: str | None,
    taken_port: int,
    app_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = app_home / "config.yaml"
    config.write_text("{}\n", encoding="utf-8")
    monkeypatch.delenv(ALLOC, raising=False)
    monkeypatch.delenv("PYTORCH_ALLOC_CONF", raising=False)
    if user_setting is not None:
        monkeypatch.setenv("PYTORCH_ALLOC_CONF", user_setting)
    monkeypatch.setattr(sys, "platform", platform)
    run_serve(taken_port, config)
    assert os.environ.get(ALLOC) == expected
    assert os.environ.get("PYTORCH_ALLOC_CONF") == user_setting
