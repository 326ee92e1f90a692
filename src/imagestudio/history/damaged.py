"""A damaged history file never stops the server: it is moved aside and the images listed again.

A corrupt, truncated or table-less file (anything :func:`imagestudio.history.schema.open_database`
refuses) is renamed ``<name>.damaged-<timestamp>`` with its WAL/SHM companions; the store says so in one
log line, then starts a fresh file and lists the images again from the metadata every PNG carries. Only a
file from a *newer* imagestudio is refused instead, since moving it aside would lose its history.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from imagestudio.errors import ConfigError
from imagestudio.history.search import fold
from imagestudio.storage.saved_image import new_image_id

log = logging.getLogger(__name__)


def move_aside(db_path: Path, error: sqlite3.DatabaseError) -> Path:
    """Rename the damaged file (and its WAL/SHM companions) out of the way; returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
    counter = 1
    while target.exists():
        target = db_path.with_name(f"{db_path.name}.damaged-{stamp}-{counter}")
        counter += 1
    try:
        db_path.replace(target)
        for companion in ("-wal", "-shm"):
            extra = db_path.with_name(db_path.name + companion)
            if extra.exists():
                extra.replace(target.with_name(target.name + companion))
    except OSError as exc:
        raise ConfigError(
            f"the history database {db_path} is damaged ({error}) and cannot be moved aside: "
            f"{exc.strerror or exc}",
            param="storage.history_db",
        ) from None
    return target


def rows_from_outputs(root: Path, known: set[str]) -> list[tuple[Any, ...]]:
    """``images`` rows for every PNG under ``root`` that carries this app's metadata and is not ``known``.

    The images come back without their jobs (a job's timings and errors lived only in the lost
    file); each keeps its prompt, seed, size, model and every parameter it was made with.
    """
    from imagestudio.storage.metadata import read_metadata

    rows = []
    for path in sorted(root.rglob("*.png")):
        relative = path.relative_to(root).as_posix()
        if relative in known or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            meta = read_metadata(path)
            rows.append(_rebuilt_row(relative, meta, path.stat().st_mtime))
        except Exception as exc:  # noqa: BLE001 (one unreadable file must not stop the others)
            log.debug("not listed again: %s (%s)", path, exc)
    return [row for row in rows if row is not None]


def _rebuilt_row(relative: str, meta: dict[str, Any], mtime: float) -> tuple[Any, ...] | None:
    """An ``images`` row from a PNG's own metadata; None for a PNG this app did not write."""
    if not meta or not isinstance(meta.get("prompt"), str):
        return None
    created_at = mtime
    stamp = meta.get("created_at")
    if isinstance(stamp, str):
        from datetime import datetime

        with suppress(ValueError):
            created_at = datetime.fromisoformat(stamp).timestamp()
    prompt = meta["prompt"]
    return (
        new_image_id(),
        None,
        relative,
        prompt,
        fold(prompt),
        meta.get("negative_prompt"),
        meta.get("model"),
        int(meta.get("seed") or 0),
        int(meta.get("width") or 0),
        int(meta.get("height") or 0),
        created_at,
        json.dumps(meta, ensure_ascii=False, default=str),
    )
