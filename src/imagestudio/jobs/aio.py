"""Bridges from the queue's worker thread to asyncio code (HTTP routes, SSE streams)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from imagestudio.errors import JobTimedOut

if TYPE_CHECKING:
    from imagestudio.jobs.model import JobEvent, JobInfo
    from imagestudio.jobs.queue_protocol import JobBackend


class ClientDisconnected(Exception):
    """The client of a synchronous request went away; its job was cancelled."""


@asynccontextmanager
async def job_events(queue: JobBackend, job_id: str | None) -> AsyncIterator[asyncio.Queue[JobEvent]]:
    """An asyncio queue that receives the job's events (first the catch-up ones) until the block ends.

    The worker thread never touches the asyncio queue itself: each event is scheduled onto this
    loop with ``call_soon_threadsafe``. Raises KeyError for an unknown job.
    """
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[JobEvent] = asyncio.Queue()

    def sink(event: JobEvent) -> None:
        loop.call_soon_threadsafe(events.put_nowait, event)

    unsubscribe = queue.subscribe(job_id, sink)
    try:
        yield events
    finally:
        unsubscribe()


async def wait_for_job(
    queue: JobBackend,
    job_id: str,
    *,
    timeout_s: float,
    is_disconnected: Callable[[], Awaitable[bool]] | None = None,
    check_every_s: float = 0.5,
) -> JobInfo:
    """Wait for the job's terminal event and return its final snapshot.

    Cancels the job and raises :class:`JobTimedOut` after ``timeout_s``, or
    :class:`ClientDisconnected` when ``is_disconnected()`` turns true (checked every ``check_every_s``).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    next_check = loop.time() + check_every_s
    async with job_events(queue, job_id) as events:
        while True:
            now = loop.time()
            if now >= deadline:
                queue.cancel(job_id)
                raise JobTimedOut(
                    f"the job did not finish within {timeout_s:g}s (server.request_timeout_s) and was "
                    "cancelled; use POST /api/jobs for long work",
                    code="timed_out",
                    details={"seconds": f"{timeout_s:g}"},
                )
            if is_disconnected is not None and now >= next_check:
                next_check = now + check_every_s
                if await is_disconnected():
                    queue.cancel(job_id)
                    raise ClientDisconnected(job_id)
            wake = deadline if is_disconnected is None else min(deadline, next_check)
            try:
                event = await asyncio.wait_for(events.get(), max(0.0, wake - now))
            except asyncio.TimeoutError:
                continue
            if event.terminal:
                assert event.info is not None
                return event.info
