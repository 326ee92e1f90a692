from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from imagestudio.storage.files import (
    atomic_write_text,
    image_basename,
    resolve_inside,
    slugify,
    write_new_file,
)


def test_slug_keeps_cyrillic_and_drops_unsafe_characters() -> None:
    assert slugify("Кот в шляпе!") == "кот-в-шляпе"
    assert slugify('a/b\\c:d*e?"f<g>h|i') == "a-b-c-d-e-f-g-h-i"
    assert slugify("...") == "image"
    assert len(slugify("x" * 500)) == 40


def test_basename_names_time_seed_and_prompt() -> None:
    name = image_basename("кот в шляпе", 7, datetime(2026, 11, 21, 15, 30, 12))
    assert name.startswith("20261121-153012_7_кот-в-шляпе_")


def test_write_never_overwrites(tmp_path: Path) -> None:
    first = write_new_file(tmp_path, "same", ".png", b"one")
    second = write_new_file(tmp_path, "same", ".png", b"two")
    assert first != second
    assert first.read_bytes() == b"one" and second.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_many_threads_same_name(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda i: write_new_file(tmp_path, "x", ".png", str(i).encode()), range(64)))
    assert len(set(paths)) == 64
    assert sorted(int(p.read_bytes()) for p in paths) == list(range(64))


def _write_in_child(args: tuple[str, int]) -> str:
    folder, index = args
    return str(write_new_file(Path(folder), "proc", ".png", str(index).encode()))


def test_two_processes_same_name(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        paths = pool.map(_write_in_child, [(str(tmp_path), i) for i in range(20)])
    assert len(set(paths)) == 20


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_new_file(tmp_path, "x", ".png", b"data")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write_text(target, "1")
    atomic_write_text(target, "2")
    assert target.read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_resolve_inside(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert resolve_inside(tmp_path, "a/b.png") == (tmp_path / "a" / "b.png").resolve()
    for bad in ("../x.png", "/etc/passwd", "a/../../x"):
        with pytest.raises(ValueError, match="leaves"):
            resolve_inside(tmp_path, bad)
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(ValueError, match="leaves"):
        resolve_inside(tmp_path, "link/passwd")
