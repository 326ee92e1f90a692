"""Download progress: the event the terminal, job events and the UI show, and the meter that makes it.

Rate is averaged over the last few seconds of transfer (bytes already on disk at the start do not
count towards it), so the ETA follows the connection as it is now. Listeners are called at most every
``PROGRESS_INTERVAL_S``, and always at file boundaries and on each file's first bytes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imagestudio.models.units import human_bytes, human_duration

#: Progress callbacks are rate-limited to this interval (plus one at every file boundary).
PROGRESS_INTERVAL_S = 0.1
#: The window the transfer rate is averaged over.
RATE_WINDOW_S = 5.0


@dataclass(frozen=True)
class DownloadProgress:
    """A progress event: what the terminal bar, the job events and the UI's bar show."""

    model_id: str
    done_bytes: int
    total_bytes: int
    #: Bytes per second over the last few seconds of transfer (0 before any).
    rate: float
    #: Seconds left at ``rate``; None while unknown.
    eta: float | None
    current_file: str | None
    files_done: int
    files_total: int

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 1.0

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "done_bytes": self.done_bytes,
            "total_bytes": self.total_bytes,
            "rate": round(self.rate, 1),
            "eta": None if self.eta is None else round(self.eta, 1),
            "current_file": self.current_file,
            "files_done": self.files_done,
            "files_total": self.files_total,
        }

    def line(self) -> str:
        """One plain-text line for logs and terminals without a progress bar."""
        return (
            f"{self.fraction:4.0%}  {human_bytes(self.done_bytes)} / {human_bytes(self.total_bytes)}  "
            f"{human_bytes(self.rate)}/s  ETA {human_duration(self.eta)}  {self.current_file or ''}".rstrip()
        )


ProgressCallback = Callable[[DownloadProgress], None]


class ProgressMeter:
    """Counts bytes, derives rate and ETA, and calls the callback at a bounded rate."""

    def __init__(
        self,
        model_id: str,
        total_bytes: int,
        *,
        have_bytes: int = 0,
        files_total: int = 0,
        files_done: int = 0,
        callback: ProgressCallback | None = None,
    ) -> None:
        self.model_id = model_id
        self.total_bytes = total_bytes
        self.files_total = files_total
        self.callback = callback
        #: Bytes in place (counting those already here at the start); ``fetched``: from the network.
        self.done = have_bytes
        self.fetched = 0
        self.files_done = files_done
        self.current: str | None = None
        self.samples: deque[tuple[float, int]] = deque()
        self.last_emit = 0.0
        # The first bytes of each file are always reported: a listener learns the transfer has begun.
        self.first_chunk = False

    def rate(self, now: float) -> float:
        while len(self.samples) > 1 and now - self.samples[0][0] > RATE_WINDOW_S:
            self.samples.popleft()
        if len(self.samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def snapshot(self) -> DownloadProgress:
        now = time.monotonic()
        rate = self.rate(now)
        left = self.total_bytes - self.done
        eta = 0.0 if left <= 0 else (left / rate if rate > 0 else None)
        return DownloadProgress(
            self.model_id,
            self.done,
            self.total_bytes,
            rate,
            eta,
            self.current,
            self.files_done,
            self.files_total,
        )

    def emit(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.callback is None or (not force and now - self.last_emit < PROGRESS_INTERVAL_S):
            return
        self.last_emit = now
        self.callback(self.snapshot())

    def start_file(self, path: str) -> None:
        self.current = path
        self.first_chunk = True
        self.emit(force=True)

    def add(self, count: int, *, transferred: bool = True) -> None:
        self.done += count
        if transferred:
            self.fetched += count
            self.samples.append((time.monotonic(), self.fetched))
        self.emit(force=transferred and self.first_chunk)
        self.first_chunk = self.first_chunk and not transferred

    def end_file(self) -> None:
        self.files_done += 1
        self.emit(force=True)
