"""The job queue: every request from the UI or the API becomes a job run by one worker thread.

One worker, because the accelerator does one thing at a time well and the model manager keeps one
model resident; a second worker would only fight it for memory.

Invariants:

* A job accepted by :meth:`JobQueue.submit` always ends in done, failed or cancelled, with one
  terminal event, and is recorded in the history store; nothing accepted is dropped. When the queue
  is full, :meth:`submit` refuses up front (:class:`~imagestudio.errors.QueueFull`).
* Nothing a job does can stop the worker: every exception is turned into a failed job (user errors
  keep their message, bugs are logged with their traceback and reported generically).
* Lock order: the queue's lock, then the history store's. The history never calls back into the
  queue, and event sinks must not block (they hand the event to another thread or loop).
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ImageStudioError, JobCancelled, QueueFull, ServiceStopping, UserError
from imagestudio.jobs.events import (
    STOPPED_BEFORE_RUN,
    STOPPED_DURING_JOB,
    queued_event,
    snapshot_events,
    terminal_event,
)
from imagestudio.jobs.model import (
    JobError,
    JobEvent,
    JobInfo,
    JobProgress,
    JobState,
    ResultImage,
    new_id,
    request_kind,
)

if TYPE_CHECKING:
    from imagestudio.engine.pipeline_calls import ProgressCallback, StepProgress
    from imagestudio.jobs.limits import SubmitLimits
    from imagestudio.storage.history import HistoryStore, NewImage
    from imagestudio.studio import StudioResult

log = logging.getLogger(__name__)

#: Runs one job's request: ``runner(request, on_step, cancel) -> StudioResult``. It must call
#: ``on_step`` after each denoising step and raise JobCancelled soon after ``cancel`` is set.
Runner = Callable[[Any, "ProgressCallback", threading.Event], "StudioResult"]
#: Receives events; called with the queue's lock held, so it must only hand the event over.
EventSink = Callable[[JobEvent], None]
#: Turns a step (with its latents) into a preview attached to the step event; runs on the worker
#: thread between two steps, so it must be cheap (or return None to skip a step).
PreviewMaker = Callable[["StepProgress"], Any]

GENERIC_FAILURE = "internal error while running the job; the server log has the details"
#: Without measurements, the first Retry-After guesses this many seconds per job.
DEFAULT_JOB_SECONDS = 10.0


@dataclass(eq=False)
class _Job:
    """The queue's private, mutable record of a job; guarded by the queue's lock."""

    id: str
    #: The typed request; dropped when the job is retired (an edit's input images can be large).
    request: Any
    created_at: float
    state: JobState = JobState.QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    progress: JobProgress | None = None
    error: JobError | None = None
    images: tuple[ResultImage, ...] = ()
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str = "cancelled"
    #: The client address that submitted it (None: the studio's own pages, tests).
    client: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    started_clock: float = 0.0
    # (clock, global step index) of the first step seen, for the ETA
    first_step: tuple[float, int] | None = None
    # What snapshots show of the request, taken once at submission.
    kind: str = field(init=False)
    model: str | None = field(init=False)
    prompt: str | None = field(init=False)
    request_dump: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        request = self.request
        self.kind = request_kind(request)
        self.model = getattr(request, "model", None)
        self.prompt = getattr(request, "prompt", None)
        self.request_dump = request_dump(request)

    def info(self, position: int | None = None) -> JobInfo:
        return JobInfo(
            id=self.id,
            kind=self.kind,
            state=self.state,
            model=self.model,
            prompt=self.prompt,
            request=self.request_dump,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            queue_position=position,
            progress=self.progress,
            error=self.error,
            images=self.images,
        )


@dataclass(frozen=True)
class QueueStats:
    running: str | None
    queued: int
    max_queue: int
    worker_alive: bool


class JobQueue:
    """A bounded FIFO of jobs served by one worker thread; thread-safe; started by :meth:`start`."""

    def __init__(
        self,
        runner: Runner,
        *,
        max_queue: int,
        history: HistoryStore | None = None,
        keep_finished: int = 500,
        preview: PreviewMaker | None = None,
        limits: SubmitLimits | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._runner = runner
        self._max_queue = max_queue
        self._history = history
        self._keep_finished = keep_finished
        self._preview = preview
        self._limits = limits
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: collections.deque[_Job] = collections.deque()
        self._running: _Job | None = None
        self._jobs: dict[str, _Job] = {}
        self._finished_order: collections.deque[str] = collections.deque()
        self._sinks: dict[str | None, list[EventSink]] = {}
        self._durations: collections.deque[float] = collections.deque(maxlen=20)
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ----------------------------------------------------------------- lifecycle

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
            if self._stopping:
                thread = self._thread
            else:
                self._stopping = True
                while self._pending:
                    self._cancel_queued(self._pending.popleft(), STOPPED_BEFORE_RUN)
                if self._running is not None:
                    self._running.cancel_reason = STOPPED_DURING_JOB
                    self._running.cancel.set()
                self._wake.notify_all()
                thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the worker did not stop within %.0fs (a step is still running)", timeout)

    @property
    def worker_alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    # ----------------------------------------------------------------- public API

    def submit(self, request: Any, client: str | None = None) -> JobInfo:
        """Queue ``request`` (already validated) and return the new job's snapshot.

        ``client`` (default: the HTTP client being served, see :mod:`imagestudio.jobs.clients`) is
        held to ``max_queued_per_client`` jobs waiting or running. Raises :class:`InvalidRequest` over
        the prompt or image-count limits, :class:`QueueFull` when ``max_queue`` jobs are already
        waiting (or the client has its share), and :class:`ServiceStopping` once :meth:`stop` was called.
        """
        from imagestudio.jobs.clients import current_client

        client = client if client is not None else current_client()
        if self._limits is not None:
            self._limits.check_request(request)
        with self._lock:
            if self._stopping:
                raise ServiceStopping(
                    "the server is shutting down and takes no new jobs", code="server_stopping"
                )
            if len(self._pending) >= self._max_queue:
                raise QueueFull(
                    f"the queue is full ({self._max_queue} jobs waiting); retry later",
                    retry_after_s=self._retry_after_locked(),
                    waiting=self._max_queue,
                )
            self._check_client_share(client)
            job = _Job(id=new_id(), request=request, created_at=time.time(), client=client)
            if self._history is not None:
                # Recorded before it can run, so a crash at any later point leaves a row to recover.
                self._history.record_job(
                    job.id,
                    kind=job.kind,
                    model=job.model,
                    prompt=job.prompt,
                    request=job.request_dump,
                    seed=getattr(request, "seed", None),
                    created_at=job.created_at,
                )
            self._jobs[job.id] = job
            self._pending.append(job)
            position = len(self._pending)
            self._emit(queued_event(job.id, position))
            self._wake.notify()
            return job.info(position)

    def cancel(self, job_id: str) -> JobInfo | None:
        """Cancel a job: at once if it is waiting, between two steps if it is running.

        Returns the job's snapshot (a finished job is left as it is), or None for an unknown id.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state is JobState.QUEUED:
                self._pending.remove(job)
                self._cancel_queued(job, "cancelled")
                self._emit_positions()
            elif job.state is JobState.RUNNING:
                job.cancel.set()
            return job.info(self._position(job))

    def get(self, job_id: str) -> JobInfo | None:
        """The job's snapshot if this queue knows it (recent finished jobs included), else None."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.info(self._position(job))

    def jobs(self) -> list[JobInfo]:
        """Every job this queue remembers: running, then waiting in order, then finished, newest first."""
        with self._lock:
            infos = []
            if self._running is not None:
                infos.append(self._running.info())
            infos += [job.info(index) for index, job in enumerate(self._pending, start=1)]
            infos += [self._jobs[job_id].info() for job_id in reversed(self._finished_order)]
            return infos

    def wait(self, job_id: str, timeout: float | None = None) -> JobInfo:
        """Block until the job finishes (or ``timeout`` passes) and return its snapshot."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        job.finished.wait(timeout)
        with self._lock:
            return job.info(self._position(job))

    def subscribe(self, job_id: str | None, sink: EventSink) -> Callable[[], None]:
        """Send ``sink`` the events of one job (or of every job, for ``None``); returns an unsubscriber.

        A job subscriber first gets the events that bring it up to date (its position, or the last
        step, or the terminal event), atomically with registering, so it never misses or repeats one.
        Raises KeyError for a job this queue does not know.
        """
        with self._lock:
            if job_id is not None:
                job = self._jobs.get(job_id)
                if job is None:
                    raise KeyError(job_id)
                for event in snapshot_events(job.info(self._position(job))):
                    sink(event)
                if job.state.finished:
                    return lambda: None
            self._sinks.setdefault(job_id, []).append(sink)

        def unsubscribe() -> None:
            with self._lock:
                sinks = self._sinks.get(job_id, [])
                if sink in sinks:
                    sinks.remove(sink)
                if not sinks:
                    self._sinks.pop(job_id, None)

        return unsubscribe

    def stats(self) -> QueueStats:
        with self._lock:
            running = self._running.id if self._running is not None else None
            return QueueStats(running, len(self._pending), self._max_queue, self.worker_alive)

    def retry_after_s(self) -> int:
        with self._lock:
            return self._retry_after_locked()

    # ----------------------------------------------------------------- the worker

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if not self._pending:
                    return
                job = self._pending.popleft()
                job.state = JobState.RUNNING
                job.started_at = time.time()
                job.started_clock = time.perf_counter()
                self._running = job
                self._emit_positions()
                self._emit(snapshot_events(job.info())[0])
            self._record("mark_running", job.id, job.started_at)
            self._finish(job, *self._execute(job))

    def _execute(self, job: _Job) -> tuple[JobState, JobError | None, StudioResult | None]:
        try:
            result = self._runner(job.request, self._step_reporter(job), job.cancel)
        except JobCancelled:
            return JobState.CANCELLED, JobError(job.cancel_reason, "cancelled", 409), None
        except UserError as exc:
            # One line per refused job, so a 4xx/5xx the worker gives is in the server log too.
            log.warning("job %s failed (%d %s): %s", job.id, exc.http_status, exc.error_type, exc.message)
            error = JobError(exc.message, exc.error_type, exc.http_status, exc.param, exc.code, exc.details)
            return JobState.FAILED, error, None
        except ImageStudioError as exc:
            # Deliberate, explained failures (NaN/black output): the message helps, the traceback doesn't.
            log.warning("job %s failed: %s", job.id, exc)
            return JobState.FAILED, JobError(str(exc), code=exc.code, details=exc.details), None
        except BaseException as exc:
            if _is_out_of_memory(exc):
                log.warning("job %s ran out of memory: %s", job.id, exc)
                message = (
                    "out of memory on the device; try a smaller size, fewer images, or an offload "
                    "setting (device.enable_cpu_offload)"
                )
                return JobState.FAILED, JobError(message, "out_of_memory", 503, code="out_of_memory"), None
            log.exception("job %s failed with an unexpected error", job.id)
            return JobState.FAILED, JobError(GENERIC_FAILURE), None
        return JobState.DONE, None, result

    def _step_reporter(self, job: _Job) -> ProgressCallback:
        def on_step(step: StepProgress) -> None:
            now = time.perf_counter()
            index = (step.image - 1) * step.steps + step.step
            total = step.images * step.steps
            eta = None
            if job.first_step is None:
                # Timed from the first step: model loading before it would skew every estimate.
                job.first_step = (now, index)
            elif index > job.first_step[1]:
                per_step = (now - job.first_step[0]) / (index - job.first_step[1])
                eta = per_step * (total - index)
            progress = JobProgress(
                step.image, step.images, step.step, step.steps, now - job.started_clock, eta
            )
            preview = self._make_preview(job, step)
            with self._lock:
                job.progress = progress
                self._emit(JobEvent(job.id, "step", progress.as_dict(), preview=preview))

        return on_step

    def _make_preview(self, job: _Job, step: StepProgress) -> Any:
        if self._preview is None:
            return None
        try:
            return self._preview(step)
        except Exception:  # a broken preview must not fail the job
            log.warning("preview failed for job %s", job.id, exc_info=True)
            return None

    def _finish(
        self, job: _Job, state: JobState, error: JobError | None, result: StudioResult | None
    ) -> None:
        finished_at = time.time()
        images: tuple[ResultImage, ...] = ()
        if result is not None:
            images = tuple(
                ResultImage(new_id(), saved.seed, saved.width, saved.height, str(saved.path))
                for saved in result.images
            )
        if self._history is not None and result is not None:
            try:
                # Before the rows that name them, so History never shows a result without its inputs.
                self._history.keep_inputs(job.request)
            except Exception:
                log.exception("could not keep the input pictures of job %s", job.id)
        if self._history is not None:
            try:
                self._history.finish_job(
                    job.id,
                    state,
                    finished_at,
                    error=error,
                    timings={
                        "queued_s": round((job.started_at or finished_at) - job.created_at, 3),
                        "run_s": round(finished_at - (job.started_at or finished_at), 3),
                        **({"elapsed_s": round(result.elapsed_s, 3)} if result is not None else {}),
                    },
                    extra=result.extra if result is not None else None,
                    images=[_history_image(job, image, result) for image in images] if result else [],
                )
            except Exception:
                log.exception("could not record job %s in the history", job.id)
                state, error, images = JobState.FAILED, JobError(GENERIC_FAILURE), ()
        with self._lock:
            job.state, job.error, job.images, job.finished_at = state, error, images, finished_at
            self._running = None
            if state is JobState.DONE:
                self._durations.append(finished_at - (job.started_at or finished_at))
            self._emit(terminal_event(job.info()))
            self._retire(job)

    # ----------------------------------------------------------------- helpers (lock held)

    def _check_client_share(self, client: str | None) -> None:
        """One client may not fill the queue for everyone: at most its share of jobs waiting or running."""
        share = self._limits.max_queued_per_client if self._limits is not None else None
        if client is None or share is None:
            return
        active = [*self._pending, *([self._running] if self._running is not None else [])]
        mine = sum(1 for job in active if job.client == client)
        if mine >= share:
            error = QueueFull(
                f"this client already has {mine} jobs waiting or running (server.max_queued_per_client "
                f"is {share}); retry when one has finished",
                retry_after_s=self._retry_after_locked(),
                waiting=share,
            )
            error.code = "client_queue_full"
            raise error

    def _cancel_queued(self, job: _Job, reason: str) -> None:
        job.state, job.finished_at = JobState.CANCELLED, time.time()
        job.error = JobError(reason, "cancelled", 409)
        self._record("finish_job", job.id, JobState.CANCELLED, job.finished_at, error=job.error)
        self._emit(terminal_event(job.info()))
        self._retire(job)

    def _retire(self, job: _Job) -> None:
        job.request = None
        job.finished.set()
        self._sinks.pop(job.id, None)
        self._finished_order.append(job.id)
        while len(self._finished_order) > self._keep_finished:
            self._jobs.pop(self._finished_order.popleft(), None)

    def _position(self, job: _Job) -> int | None:
        if job.state is not JobState.QUEUED:
            return None
        return self._pending.index(job) + 1

    def _emit_positions(self) -> None:
        for position, waiting in enumerate(self._pending, start=1):
            self._emit(queued_event(waiting.id, position))

    def _emit(self, event: JobEvent) -> None:
        for key in (event.job_id, None):
            for sink in list(self._sinks.get(key, ())):
                try:
                    sink(event)
                except Exception:
                    log.debug("dropping a subscriber of %s", key, exc_info=True)
                    self._sinks[key].remove(sink)

    def _retry_after_locked(self) -> int:
        per_job = sum(self._durations) / len(self._durations) if self._durations else DEFAULT_JOB_SECONDS
        # A place frees up when the running job ends: about one job's time.
        return max(1, min(3600, math.ceil(per_job)))

    def _record(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Call a history method, logging (not raising) a failure."""
        if self._history is None:
            return
        try:
            getattr(self._history, method)(*args, **kwargs)
        except Exception:
            log.exception("could not update the history")


def _history_image(job: _Job, image: ResultImage, result: StudioResult) -> NewImage:
    from imagestudio.storage.history import NewImage

    saved = next(s for s in result.images if str(s.path) == image.path)
    meta = saved.metadata
    return NewImage(
        id=image.id,
        path=saved.path,
        seed=image.seed,
        width=image.width,
        height=image.height,
        prompt=meta.get("prompt") or job.prompt or "",
        negative_prompt=meta.get("negative_prompt"),
        model=result.model,
        metadata=meta,
    )


def _is_out_of_memory(exc: BaseException) -> bool:
    # By name and message: importing torch here just to classify an error would be wrong for runners
    # that never touch it.
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def request_dump(request: Any) -> dict[str, Any]:
    """The request as JSON for status and history: input images by name and hash, never their pixels."""
    import json

    if hasattr(request, "metadata_fields"):
        fields = {**request.metadata_fields(), "count": request.count}
        # Round-trip so anything not JSON-native (paths, tuples) is stored the way it will be read.
        return json.loads(json.dumps(fields, default=str))
    return request.model_dump(mode="json") if hasattr(request, "model_dump") else {}
