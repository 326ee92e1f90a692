"""The history as a subscriber of the job queues: :class:`~imagestudio.jobs.recorder.JobRecorder` over SQLite.

Both queues (in-process and cluster) tell it the same three things, so a job's rows look the same
wherever it ran: a ``queued`` row when it is accepted, ``running`` when its first attempt starts, and
at its end the outcome with its images in one transaction, after its input pictures are kept.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from imagestudio.jobs.model import JobState

if TYPE_CHECKING:
    from imagestudio.history.store import HistoryStore
    from imagestudio.jobs.model import JobInfo, JobRequest
    from imagestudio.jobs.recorder import JobEnd

log = logging.getLogger(__name__)


class HistoryRecorder:
    """Records every job a queue reports into ``history``; never calls back into the queue."""

    def __init__(self, history: HistoryStore) -> None:
        self.history = history

    def submitted(self, job: JobInfo, request: JobRequest) -> None:
        self.history.record_job(
            job.id,
            kind=job.kind,
            model=job.model,
            prompt=job.prompt,
            request=job.request,
            seed=request.seed,
            created_at=job.created_at,
        )

    def started(self, job: JobInfo) -> None:
        if job.started_at is not None:
            self.history.mark_running(job.id, job.started_at)

    def finished(self, end: JobEnd) -> None:
        """The job's end and its images in one transaction; raises if they could not be recorded."""
        job = end.info
        if job.state is JobState.DONE and end.request is not None:
            try:
                # Before the rows that name them, so History never shows a result without its inputs.
                self.history.keep_inputs(end.request)
            except Exception:
                # The result still counts: History shows it, only without its input pictures.
                log.exception("could not keep the input pictures of job %s", job.id)
        self.history.finish_job(
            job.id,
            job.state,
            job.finished_at if job.finished_at is not None else job.created_at,
            error=job.error,
            timings=end.timings,
            extra=end.extra or None,
            images=job.images,
        )
