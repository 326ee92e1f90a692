"""Hostile config files and huge values: refused fast, in one short line, without blowing up memory."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from imagestudio.config import MAX_CONFIG_NODES, load_settings
from imagestudio.errors import ConfigError
from imagestudio.quoting import short_repr
from tests.conftest import PYTHON, cli_env


def alias_bomb(levels: int, fan_out: int = 9) -> str:
    """The classic "billion laughs": each level is ``fan_out`` aliases of the one before."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * fan_out)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan_out)}]" for i in range(1, levels)]
    return "".join(f"  {line}\n" for line in lines)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_alias_bomb_under_a_typed_key_is_refused_at_once(tmp_path: Path) -> None:
    # 9^9 strings from well under a kilobyte: expanding it took 85 s and 3 GB, then a MemoryError.
    path = write(tmp_path, f"x-anchors:\n{alias_bomb(9)}server:\n  port: *a8\n")
    assert path.stat().st_size < 1000
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    # Refused before expanding: milliseconds. The bound only has to tell that apart from the 85 s of an
    # expansion, with room for a CI box running two test workers at once.
    assert time.perf_counter() - started < 10
    message = caught.value.message
    assert "alias bomb" in message and len(message) < 300 and "\n" not in message


def test_a_large_value_under_a_typed_key_is_quoted_short(tmp_path: Path) -> None:
    # Below the expansion limit, so it reaches validation: the message must not print it whole.
    assert MAX_CONFIG_NODES > 3 * 6**5
    path = write(tmp_path, f"x-anchors:\n{alias_bomb(5, fan_out=6)}server:\n  port: *a4\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "server.port" in caught.value.message and len(caught.value.message) < 400
    long_string = write(tmp_path, f"server:\n  port: {'p' * 100_000}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(long_string)
    assert "(100000 characters)" in caught.value.message and len(caught.value.message) < 400
    # A 100,000-digit integer: Python refuses to convert it; still one short line, no traceback.
    with pytest.raises(ConfigError, match="a value cannot be read") as caught:
        load_settings(write(tmp_path, f"server:\n  port: {'9' * 100_000}\n"))
    assert len(caught.value.message) < 400


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="refers to itself"):
        load_settings(write(tmp_path, "server:\n  cors_origins: &r [*r]\n"))


def test_short_repr_bounds_any_value() -> None:
    assert short_repr("кот") == "'кот'"
    assert short_repr(7) == "7"
    long = short_repr("a" * 100_000)
    assert long.endswith("(100000 characters)") and len(long) < 100
    nested: list = ["x"] * 9
    for _ in range(8):
        nested = [nested] * 9
    started = time.perf_counter()
    assert len(short_repr(nested)) <= 130
    # 9^9 leaves: walking them would take minutes; a cut-short walk takes microseconds, whatever the load.
    assert time.perf_counter() - started < 2


def test_the_cli_quotes_a_100_kb_prompt_short(config_file: Path, tmp_path: Path) -> None:
    argv = [PYTHON, "-m", "imagestudio", "generate", "--model", "tiny-z-image", "a" * 100_000]
    argv += ["--out", str(tmp_path / "out"), "--config", str(config_file)]
    done = subprocess.run(argv, capture_output=True, text=True, env=cli_env(), timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: prompt = 'aaaa") and "(100000 characters)" in line
    assert len(line) < 300
