"""The job queue's interface: what the HTTP API, the web UI and the asyncio bridges call.

Two implementations: :class:`~imagestudio.jobs.local_queue.JobQueue` (one worker thread in this process,
the single-PC default) and ``imagestudio.cluster.cluster_queue.ClusterQueue`` (workers elsewhere, chosen with
``cluster.backend: ray``), both over the same bookkeeping (:class:`~imagestudio.jobs.book.JobBook`).
Callers type against this protocol so either can sit behind ``app.state.services.queue``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from imagestudio.jobs.model import EventSink, JobInfo, JobRequest, QueueStats


class JobBackend(Protocol):
    """A bounded, thread-safe queue of jobs that ends every accepted job with one terminal event."""

    def start(self) -> None:
        """Start serving jobs (once)."""

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new jobs, cancel the waiting and running ones, and wait for the workers."""

    @property
    def worker_alive(self) -> bool:
        """Whether a job submitted now can run (a worker thread, or at least one live worker)."""

    def submit(self, request: JobRequest, client: str | None = None) -> JobInfo:
        """Queue a validated request for ``client`` (default: the HTTP client being served).

        Raises InvalidRequest over the request limits, QueueFull (429) when the queue or the client's
        share is full, ServiceStopping (503) once stopping.
        """

    def cancel(self, job_id: str) -> JobInfo | None:
        """Drop a waiting job, or stop a running one within a step; None for an unknown id."""

    def get(self, job_id: str) -> JobInfo | None:
        """The job's snapshot if this queue knows it, else None."""

    def jobs(self) -> list[JobInfo]:
        """Running, then waiting in order, then finished (newest first)."""

    def wait(self, job_id: str, timeout: float | None = None) -> JobInfo:
        """Block until the job finishes (or ``timeout`` passes); KeyError for an unknown id."""

    def subscribe(self, job_id: str | None, sink: EventSink) -> Callable[[], None]:
        """Catch-up events, then live ones, for one job (or all, for None); returns an unsubscriber."""

    def stats(self) -> QueueStats:
        """Running job, waiting count, the bound and liveness, for /api/system and /healthz."""

    def retry_after_s(self) -> int:
        """Seconds a refused client should wait before retrying (Retry-After)."""


@runtime_checkable
class WorkerListing(Protocol):
    """A backend with several workers to show (the cluster's); the in-process queue is not one."""

    def workers(self) -> list[Any]:
        """One status per live worker (``imagestudio.cluster.cluster_queue.WorkerStatus``)."""
