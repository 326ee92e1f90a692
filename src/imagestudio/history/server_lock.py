"""One server per history: a second ``serve`` on the same files is refused while the first runs.

The server that opens a history owns it: at start it marks the jobs a killed server left ``queued`` or
``running`` as failed. A second server started on the same files would take the first one's running
jobs for such leftovers and fail them. So ``serve`` holds an OS file lock beside the history database
for its whole life (the kernel drops it when the process ends, however it ends: a SIGKILL leaves no stale
lock) and writes its pid and address beside it, for the one line that refuses the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from imagestudio.errors import ConfigError
from imagestudio.storage.files import atomic_write_text


def lock_paths(history_db: Path) -> tuple[Path, Path]:
    """The lock file and the file naming its holder (the lock file itself is truncated by every try)."""
    return history_db.with_name(history_db.name + ".lock"), history_db.with_name(history_db.name + ".server")


def _holder(info_path: Path) -> str:
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        return f"pid {int(info['pid'])}, {info['url']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its pid is not recorded"


@contextlib.contextmanager
def serving_lock(history_db: Path, url: str) -> Iterator[None]:
    """Hold the history for a server at ``url``; another live server holding it is a :class:`ConfigError`."""
    from filelock import FileLock, Timeout

    lock_path, info_path = lock_paths(history_db)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ConfigError(
            f"another imagestudio server ({_holder(info_path)}) is using the history {history_db}; stop it "
            "first, or give this one its own storage.history_db and storage.outputs_dir",
            param="storage.history_db",
        ) from None
    try:
        atomic_write_text(info_path, json.dumps({"pid": os.getpid(), "url": url}) + "\n")
        yield
    finally:
        info_path.unlink(missing_ok=True)
        lock.release()
