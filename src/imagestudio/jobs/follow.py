"""Following one job from a plain thread (a web page's event handler): block on its events, not a timer.

The queue calls its sinks with its lock held, so a sink may only hand the event over. :class:`EventInbox`
takes it under a small lock of its own and wakes the reading thread; :func:`job_events` subscribes one
for as long as the reader iterates. The asyncio twin is :mod:`imagestudio.jobs.aio`.

A reader slower than the job (a page streaming to a slow browser) needs only the newest step and the
newest preview, so waiting step events (and queue positions) are merged instead of piling up.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING

from imagestudio.jobs.events import terminal_event

if TYPE_CHECKING:
    from imagestudio.jobs.model import JobEvent
    from imagestudio.jobs.queue_protocol import JobBackend

#: Event types where only the newest one matters to a reader that has fallen behind.
MERGEABLE = frozenset({"queued", "step"})
#: How long a reader waits for an event before asking the queue for the job's state itself.
CHECK_EVERY_S = 2.0


class EventInbox:
    """Events handed from the queue's thread to one reading thread; consecutive steps are merged."""

    def __init__(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._events: collections.deque[JobEvent] = collections.deque()

    def put(self, event: JobEvent) -> None:
        """The queue's sink: keep ``event`` for the reader (never blocks beyond this inbox's own lock)."""
        with self._ready:
            last = self._events[-1] if self._events else None
            if (
                last is not None
                and event.type in MERGEABLE
                and last.type == event.type
                and last.job_id == event.job_id
            ):
                # The reader has not taken the previous one yet: it only needs the newest. A preview is
                # made every few steps only, so the newest one seen survives a step that has none.
                if event.preview is None and last.preview is not None:
                    event = replace(event, preview=last.preview)
                self._events[-1] = event
            else:
                self._events.append(event)
            self._ready.notify()

    def get(self, timeout: float) -> JobEvent | None:
        """The oldest event kept, waiting up to ``timeout`` seconds for one (None: nothing came)."""
        with self._ready:
            self._ready.wait_for(lambda: bool(self._events), timeout)
            return self._events.popleft() if self._events else None


def job_events(
    queue: JobBackend, job_id: str, *, check_every_s: float = CHECK_EVERY_S
) -> Generator[JobEvent, None, None]:
    """The job's events, from those that bring a newcomer up to date to the terminal one, as they happen.

    Subscribes on the first ``next()`` (KeyError for a job the queue does not know) and unsubscribes
    when the job ends or the generator is closed. The wait is bounded: after ``check_every_s`` without
    an event it asks the queue for the job's snapshot, so a reader whose subscription was dropped, or
    whose queue forgot the job, is not left waiting forever: a finished job yields its terminal event
    from the snapshot, and a job the queue no longer knows ends the iteration without one.
    """
    inbox = EventInbox()
    unsubscribe = queue.subscribe(job_id, inbox.put)
    try:
        while True:
            event = inbox.get(check_every_s)
            if event is None:
                info = queue.get(job_id)
                if info is None:
                    return
                if not info.state.finished:
                    continue
                event = terminal_event(info)
            yield event
            if event.terminal:
                return
    finally:
        unsubscribe()
