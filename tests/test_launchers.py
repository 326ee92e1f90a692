"""start_app.sh / start_app.bat: the allocator setting, and arguments passed through to ``serve``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT


def run_launcher(tmp_path: Path, *args: str, **env: str) -> str:
    """Run a copy of start_app.sh with a stand-in ``imagestudio`` that reports what it was given."""
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir(exist_ok=True)
    shim = shim_dir / "imagestudio"
    shim.write_text(
        '#!/bin/sh\necho "ALLOC=$PYTORCH_CUDA_ALLOC_CONF"\nfor a in "$@"; do echo "ARG=$a"; done\n'
        '[ -n "$IMAGESTUDIO_CONFIG" ] && echo "CONFIG=$IMAGESTUDIO_CONFIG"\nexit 0\n'
    )
    shim.chmod(0o755)
    script = tmp_path / "start_app.sh"
    shutil.copy(REPO_ROOT / "start_app.sh", script)
    environ = {
        k: v for k, v in os.environ.items() if k not in ("PYTORCH_CUDA_ALLOC_CONF", "IMAGESTUDIO_CONFIG")
    }
    environ["PATH"] = f"{shim_dir}{os.pathsep}{environ['PATH']}"
    environ.update(env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    done = subprocess.run(
        ["sh", str(script), *args], capture_output=True, text=True, env=environ, check=True, cwd=elsewhere
    )
    return done.stdout


def test_start_app_sh_sets_expandable_segments_and_passes_arguments(tmp_path: Path) -> None:
    out = run_launcher(tmp_path, "--port", "8765", "два слова")
    assert out.splitlines() == [
        "ALLOC=expandable_segments:True",
        "ARG=serve",
        "ARG=--port",
        "ARG=8765",
        "ARG=два слова",
    ]
    mine = run_launcher(tmp_path, PYTORCH_CUDA_ALLOC_CONF="max_split_size_mb:256")
    assert mine.splitlines()[0] == "ALLOC=max_split_size_mb:256"


def test_start_app_bat_does_the_same_on_windows() -> None:
    text = (REPO_ROOT / "start_app.bat").read_bytes().decode("ascii")
    assert "\r\n" in text  # cmd.exe wants CRLF line ends
    lines = [line.strip() for line in text.splitlines()]
    assert (
        'if not defined PYTORCH_CUDA_ALLOC_CONF set "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"'
        in lines
    )
    assert "imagestudio serve %*" in lines


def test_start_app_sh_uses_the_config_next_to_it_from_anywhere(tmp_path: Path) -> None:
    """Started from another folder, a config.yaml beside the launcher is still used, unless one is given."""
    assert not any(line.startswith("CONFIG=") for line in run_launcher(tmp_path).splitlines())
    beside = tmp_path / "config.yaml"
    beside.write_text("server: {port: 8000}\n", encoding="utf-8")
    assert f"CONFIG={beside}" in run_launcher(tmp_path).splitlines()
    given = run_launcher(tmp_path, "--config", "other.yaml")
    assert not any(line.startswith("CONFIG=") for line in given.splitlines())
    assert not any(
        line.startswith("CONFIG=") for line in run_launcher(tmp_path, "--config=o.yaml").splitlines()
    )
    mine = run_launcher(tmp_path, IMAGESTUDIO_CONFIG="/my/config.yaml")
    assert "CONFIG=/my/config.yaml" in mine.splitlines()


def test_start_app_bat_uses_the_config_next_to_it() -> None:
    lines = [line.strip() for line in (REPO_ROOT / "start_app.bat").read_text("ascii").splitlines()]
    assert 'if not defined IMAGESTUDIO_CONFIG if exist "%~dp0config.yaml" (' in lines
    assert lines.index("imagestudio serve %*") > lines.index(
        'if not defined IMAGESTUDIO_CONFIG if exist "%~dp0config.yaml" ('
    )
