"""Atomic, collision-free image files inside the outputs directory.

Temporary files are named ``.imagestudio-<pid>-<random>.tmp``: a process killed mid-write (kill -9,
power loss) leaves one behind, and the next start removes those whose process is gone
(:func:`clean_stale_temp_files`) without touching another live process's write in progress.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from imagestudio.errors import ConfigError, StorageFull

log = logging.getLogger(__name__)

TEMP_PREFIX = ".imagestudio-"
TEMP_SUFFIX = ".tmp"
#: Errors that mean "the disk (or this process's file-size limit) has no room for the file".
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
#: Temp files of the old naming (no pid) older than this are leftovers of a crash, not writes in flight.
_ANONYMOUS_TEMP_AGE_S = 3600.0

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
    a hidden ``.tmp`` file (removed at the next start). A full disk is :class:`StorageFull` naming the
    folder, with the temporary file removed.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = _new_temp(directory)
    except OSError as exc:
        raise _storage_error(exc, directory) from None
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise _storage_error(exc, directory) from None
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


def write_new_files(directory: Path, files: Sequence[tuple[str, str, bytes]]) -> list[Path]:
    """Write each ``(basename, suffix, data)`` with :func:`write_new_file`: all of them or none.

    A job's images are one result: when a later file fails (a disk that fills up at image 3 of 4), the
    ones already written are removed before the error is raised, so no file is left that the failed
    job's history would not list.
    """
    written: list[Path] = []
    try:
        for basename, suffix, data in files:
            written.append(write_new_file(directory, basename, suffix, data))
    except BaseException:
        discard_files(written)
        raise
    return written


def discard_files(paths: Iterable[Path]) -> None:
    """Remove files a failed job wrote (missing ones are fine); a file that cannot go is logged."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove %s of a failed job: %s", path, exc)


def _new_temp(directory: Path) -> tuple[int, str]:
    """A new temporary file in ``directory`` with a normal file's permissions.

    ``mkstemp`` creates files 0600; images are ordinary files that other users and tools (a web server,
    a photo viewer run as another user) may read, so they get 0666 minus the umask, like ``open()``.
    """
    fd, name = tempfile.mkstemp(dir=directory, prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
        raise
    return fd, name


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would race other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _storage_error(exc: OSError, directory: Path) -> Exception:
    """A full disk becomes :class:`StorageFull` naming the folder; other errors pass unchanged."""
    if exc.errno in _NO_SPACE:
        return StorageFull(
            f"no space left for the image in {directory} (the disk is full); free some space there or "
            "set storage.outputs_dir to a bigger disk",
            param="storage.outputs_dir",
            code="storage_full",
            details={"folder": str(directory)},
        )
    return exc


def check_writable_folder(directory: Path, param: str) -> None:
    """Refuse, in one line, a folder we could not write images into: checked at start, not at the first job.

    Creates the folder if it is missing, then creates and removes a temporary file in it, so an
    existing file in its place, a path under a file, a read-only disk or missing permissions are all
    caught the way the real write would meet them.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = _new_temp(directory)
        os.close(fd)
        Path(name).unlink(missing_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError) or (directory.exists() and not directory.is_dir()):
            reason = "it is a file, not a folder"
        elif exc.errno == errno.ENOTDIR:
            reason = "a part of the path is a file, not a folder"
        raise ConfigError(
            f"cannot write images to {directory}: {reason}", param=param, code="outputs_not_writable"
        ) from None


def clean_stale_temp_files(directory: Path) -> int:
    """Remove temporary files a killed writer left in ``directory``; returns how many.

    A temp file whose process is gone is a leftover; one of a live process (the CLI writing beside a
    running server) is a write in flight and is kept.
    """
    removed = 0
    try:
        candidates = list(directory.glob(f".*{TEMP_SUFFIX}"))
    except OSError:
        return 0
    for path in candidates:
        if not _is_stale(path):
            continue
        try:
            path.unlink()
            removed += 1
        except OSError as exc:
            log.warning("could not remove the leftover temporary file %s: %s", path, exc)
    if removed:
        log.warning("removed %d temporary file(s) left in %s by an interrupted write", removed, directory)
    return removed


def _is_stale(path: Path) -> bool:
    name = path.name
    if name.startswith(TEMP_PREFIX):
        pid_text = name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit():
            return not _process_alive(int(pid_text))
    try:
        return time.time() - path.stat().st_mtime > _ANONYMOUS_TEMP_AGE_S
    except OSError:
        return False


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process: alive
    return True


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
