"""The in-process job queue: every request from the UI or the API becomes a job run by one worker thread.

One worker, because the accelerator does one thing at a time well and the model manager keeps one
model resident; a second worker would only fight it for memory. The bookkeeping (submission and its
limits, positions, events, cancel, history records, the end of a job) is the shared
:class:`~imagestudio.jobs.book.JobBook`; this module adds only the worker thread.

Beyond the book's invariants: nothing a job does can stop the worker. Every exception is turned into
a failed job (:func:`~imagestudio.jobs.failures.job_error`: user errors keep their message, running out
of memory is a 507, bugs are logged with their traceback and reported generically).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imagestudio.errors import JobCancelled
from imagestudio.jobs.book import JobBook
from imagestudio.jobs.failures import job_error
from imagestudio.jobs.model import JobError, JobRequest, JobState

if TYPE_CHECKING:
    from imagestudio.engine.pipeline_calls import ProgressCallback, StepProgress
    from imagestudio.jobs.book import Job
    from imagestudio.jobs.limits import SubmitLimits
    from imagestudio.jobs.recorder import JobRecorder
    from imagestudio.studio import StudioResult

log = logging.getLogger(__name__)

#: Runs one job's request: ``handler(request, on_step, cancel) -> StudioResult``. It must call
#: ``on_step`` after each denoising step and raise JobCancelled soon after ``cancel`` is set
#: (:class:`~imagestudio.jobs.dispatch.StudioDispatcher` is the one over a Studio).
JobHandler = Callable[[JobRequest, "ProgressCallback", threading.Event], "StudioResult"]
#: Turns a step (with its latents) into a preview attached to the step event; runs on the worker
#: thread between two steps, so it must be cheap (or return None to skip a step).
PreviewMaker = Callable[["StepProgress"], Any]


class JobQueue(JobBook):
    """A bounded FIFO of jobs served by one worker thread; thread-safe; started by :meth:`start`."""

    def __init__(
        self,
        handler: JobHandler,
        *,
        max_queue: int,
        recorder: JobRecorder | None = None,
        keep_finished: int = 500,
        preview: PreviewMaker | None = None,
        limits: SubmitLimits | None = None,
    ) -> None:
        super().__init__(max_queue=max_queue, recorder=recorder, keep_finished=keep_finished, limits=limits)
        self._handler = handler
        self._preview = preview
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (once)."""
        with self._lock:
            if self._thread is not None:
                return
            if self._stopping:
                raise RuntimeError("a stopped queue cannot be restarted")
            self._thread = threading.Thread(target=self._work, name="imagestudio-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new jobs, cancel the waiting ones and the running one, and wait for the worker."""
        with self._lock:
            self._stop_jobs()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the worker did not stop within %.0fs (a step is still running)", timeout)

    def _alive_locked(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if not self._pending:
                    return
                job = self._pending.popleft()
                first = self._begin(job)
                request = job.request
            assert request is not None  # dropped only when the job is retired
            self._started(job, first)
            state, error, result = self._execute(job, request)
            self._finish(job, state, error, result)

    def _execute(
        self, job: Job, request: JobRequest
    ) -> tuple[JobState, JobError | None, StudioResult | None]:
        on_step: ProgressCallback = self._step_reporter(job, lambda step: self._make_preview(job, step))
        try:
            result = self._handler(request, on_step, job.cancel)
        except JobCancelled:
            return JobState.CANCELLED, None, None
        except BaseException as exc:  # noqa: BLE001 - a failed job, never a dead worker
            return JobState.FAILED, job_error(job.id, exc), None
        return JobState.DONE, None, result

    def _make_preview(self, job: Job, step: StepProgress) -> Any:
        if self._preview is None:
            return None
        try:
            return self._preview(step)
        except Exception:  # a broken preview must not fail the job
            log.warning("preview failed for job %s", job.id, exc_info=True)
            return None
