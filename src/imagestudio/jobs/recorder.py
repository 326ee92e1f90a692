"""What a job queue tells the record keeper (the history) about each job, as it happens.

The queue calls a :class:`JobRecorder` at three points of a job's life and never reaches into the
history itself; :class:`imagestudio.history.recorder.HistoryRecorder` implements it over the
SQLite history store. Both queues (in-process and cluster) call the same recorder at the same points:

* :meth:`JobRecorder.submitted`, before the job can run, so a crash at any later point leaves a row;
* :meth:`JobRecorder.started`, on the job's first attempt only (a job re-run after its worker died is
  one job);
* :meth:`JobRecorder.finished`, before the terminal event is sent, so a client that receives ``done``
  finds the rows. A recorder that raises here for a finished job with images makes the job fail.

The queue may call it with its own lock held (lock order: queue, then history); a recorder never calls
back into the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from imagestudio.jobs.model import JobInfo, JobRequest


@dataclass(frozen=True)
class JobEnd:
    """A job at its end: the final snapshot, and what the record keeper needs beyond it."""

    #: State, error, images and ``finished_at`` as the client will be told.
    info: JobInfo
    #: The request, for keeping an edit's input pictures; None for a job that never ran.
    request: JobRequest | None = None
    #: Seconds queued and running (and the runner's own ``elapsed_s``, ``attempts`` after a re-run).
    timings: dict[str, float] | None = None
    #: What the run reported beyond its images (memory plan, warnings, a prompt rewrite).
    extra: dict[str, Any] = field(default_factory=dict)


class JobRecorder(Protocol):
    """Receives a queue's job lifecycle events; see the module's docstring for when each comes."""

    def submitted(self, job: JobInfo, request: JobRequest) -> None:
        """A job was accepted (it is queued); raising refuses the submission."""

    def started(self, job: JobInfo) -> None:
        """The job began its first attempt."""

    def finished(self, end: JobEnd) -> None:
        """The job ended (done, failed or cancelled), with its images when done."""
