"""Bytes and durations as people read them (decimal units, as disks and the hub count)."""

from __future__ import annotations


def human_bytes(size: float) -> str:
    """``1_234_000`` → ``1.2 MB``; decimal units, like disk vendors and the hub."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def human_duration(seconds: float | None) -> str:
    """``200`` → ``3m20s``; ``None`` (unknown) → ``?``."""
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
