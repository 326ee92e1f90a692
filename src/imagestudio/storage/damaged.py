"""Moving a damaged SQLite file out of the way, so a server starts a fresh one instead of failing.

Used by the history and the browser sessions: the damaged file is kept (renamed, never deleted) for
whoever wants to look into it, with its WAL and SHM companions, which belong to it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

#: Errors of a healthy file that is busy or cannot be reached: moving it aside would lose good data.
_NOT_DAMAGE = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_FULL"})


def is_damage(error: sqlite3.DatabaseError) -> bool:
    """Whether ``error`` says the file itself is bad (not a database, malformed, tables missing)."""
    name = getattr(error, "sqlite_errorname", None)  # Python 3.11+
    if name is not None:
        return name not in _NOT_DAMAGE
    text = str(error).lower()
    return not any(word in text for word in ("locked", "busy", "unable to open", "readonly", "full"))


def rename_damaged(path: Path) -> Path:
    """Rename ``path`` (and its ``-wal``/``-shm``) to ``<name>.damaged-<timestamp>``; returns the new name.

    Raises :class:`OSError` when the file cannot be renamed.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.damaged-{stamp}-{counter}")
        counter += 1
    path.replace(target)
    for companion in ("-wal", "-shm"):
        extra = path.with_name(path.name + companion)
        if extra.exists():
            extra.replace(target.with_name(target.name + companion))
    return target
