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
    )
    shim.chmod(0o755)
    script = tmp_path / "start_app.sh"
    shutil.copy(REPO_ROOT / "start_app.sh", script)
    environ = {k: v for k, v in os.environ.items() if k != "PYTORCH_CUDA_ALLOC_CONF"}
    environ["PATH"] = f"{shim_dir}{os.pathsep}{environ['PATH']}"
    environ.update(env)
    done = subprocess.run(["sh", str(script), *args], capture_output=True, text=True, env=environ, check=True)
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
