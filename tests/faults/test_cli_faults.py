"""Faults met by ``imagestudio generate``: a bad --out, a full disk, a writer killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PYTHON, cli_env
from tests.faults.disks import fill, tmpfs
from tests.helpers import run_cli

TINY = ("generate", "--model", "tiny-z-image", "кот", "-W", "64", "-H", "64", "--steps", "1", "--seed", "1")


def one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    return line


def test_a_bad_out_is_refused_before_the_model_loads(config_file: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "taken.png"
    a_file.write_bytes(b"x")
    # The real Z-Image-Turbo is not on this machine: reaching the model would say so instead.
    for out, reason in ((a_file, "it is a file"), (a_file / "sub", "a part of the path is a file")):
        started = time.monotonic()
        done = run_cli("generate", "--model", "z-image-turbo", "a fox", "--out", str(out), config=config_file)
        line = one_line_error(done)
        assert line == f"error: cannot write images to {out}: {reason}, not a folder", line
        assert time.monotonic() - started < 60
    with tmpfs(tmp_path / "ro", read_only=True) as read_only:
        done = run_cli(*TINY, "--out", str(read_only / "images"), config=config_file)
        assert "Read-only file system" in one_line_error(done)


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_the_folder_and_leaves_no_file(
    config_file: Path, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", size_kb=64) as disk:
        out = disk / "images"
        out.mkdir()
        filler = fill(disk, leave_bytes=2048)  # room for the check's empty temp file, not for an image
        done = run_cli(*TINY, "--count", "2", "--out", str(out), config=config_file)
        line = one_line_error(done)
        assert line.startswith(f"error: no space left for the image in {out} (the disk is full)"), line
        assert list(out.iterdir()) == []  # no image, no temporary file
        filler.unlink()
        done = run_cli(*TINY, "--out", str(out), config=config_file)
        assert done.returncode == 0, done.stderr
        assert [p.suffix for p in out.iterdir()] == [".png"]


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_a_temp_file_the_next_run_removes(
    config_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # A real process opens its temporary image file the way the studio does, writes half, and is
    # killed with SIGKILL: no cleanup code of it runs.
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from imagestudio.storage.files import _new_temp\n"
        "fd, name = _new_temp(Path(sys.argv[1]))\n"
        "os.write(fd, b'\\x89PNG half')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([PYTHON, "-c", script, str(out)], env=cli_env(), check=False)
    assert killed.returncode == -signal.SIGKILL
    [left] = list(out.iterdir())
    assert left.name.startswith(".") and left.suffix == ".tmp"

    # A temp file of a live process (a write in flight elsewhere) is left alone.
    live = out / f".imagestudio-{os.getppid()}-inflight.tmp"
    live.write_bytes(b"writing")

    done = run_cli(*TINY, "--out", str(out), config=config_file)
    assert done.returncode == 0, done.stderr
    remaining = set(out.iterdir())
    assert not left.exists() and live in remaining
    [image] = remaining - {live}
    assert image.suffix == ".png"
