"""Atomic, collision-free image files inside the outputs directory."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from datetime import datetime
from pathlib import Path

_SLUG_DROP = re.compile(r"[^\w]+", re.UNICODE)
SLUG_CHARS = 40


def slugify(text: str, limit: int = SLUG_CHARS) -> str:
    """A file-name-safe excerpt of a prompt; keeps letters of any script (Cyrillic prompts stay readable)."""
    slug = _SLUG_DROP.sub("-", text.lower()).strip("-_")
    return slug[:limit].rstrip("-_") or "image"


def image_basename(prompt: str, seed: int, now: datetime | None = None) -> str:
    """``20261121-153012_7_кот-в-шляпе_3fa9c1``: sortable by time, names the seed, readable, unique.

    The random tail keeps two images of the same second and seed apart; :func:`write_new_file` still
    guarantees no overwrite if it ever collides.
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}_{seed}_{slugify(prompt)}_{secrets.token_hex(3)}"


def write_new_file(directory: Path, basename: str, suffix: str, data: bytes) -> Path:
    """Write ``data`` to a new file in ``directory``, atomically and never over an existing file.

    The bytes go to a temporary file in the same folder, are flushed to disk, and are then hard-linked
    to the final name: the link fails if the name exists (another process won the race), so we pick a
    new name instead of clobbering. A reader never sees a half-written image, and a crash leaves only
    a hidden ``.tmp`` file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        for attempt in range(100):
            name = basename if attempt == 0 else f"{basename}-{attempt}"
            final = directory / f"{name}{suffix}"
            try:
                os.link(tmp, final)
            except FileExistsError:
                continue
            return final
        raise FileExistsError(f"no free file name for {basename}{suffix} in {directory}")
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temp file + rename), for files we own and overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp_name).replace(path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def resolve_inside(root: Path, relative: str | Path) -> Path:
    """``root / relative`` if it stays inside ``root`` (no ``..``, no absolute paths, no symlink escapes)."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise ValueError(f"path {relative!s} leaves {root}")
    return candidate
