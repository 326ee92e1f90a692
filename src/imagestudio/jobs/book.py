"""The job book: the bookkeeping every job queue shares, whatever runs its jobs.

Both queues (:class:`~imagestudio.jobs.local_queue.JobQueue`, one worker thread in this process, and
``imagestudio.cluster.cluster_queue.ClusterQueue``, workers elsewhere) inherit it and add only how jobs reach
a worker. The book keeps the jobs, the waiting line and its positions, the limits every submission is
held to, the subscribers and their events, the step reports and their ETA, and the end of each job: its
record (through a :class:`~imagestudio.jobs.recorder.JobRecorder`), its one terminal event, and
forgetting it past ``keep_finished``.

Invariants:

* A job accepted by :meth:`JobBook.submit` always ends in done, failed or cancelled, with one terminal
  event, and is recorded before it can run and again before that event; nothing accepted is dropped.
  When the queue is full, :meth:`submit` refuses up front (:class:`~imagestudio.errors.QueueFull`).
* A finished job whose images cannot be recorded ends failed, with no file of it left behind.
* Everything here is guarded by ``_lock``. Lock order: the queue's lock, then the recorder's (the
  history's). The recorder never calls back into the queue, and event sinks must not block (they hand
  the event to another thread or loop).
"""

from __future__ import annotations

import collections
import json
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from imagestudio.errors import QueueFull, ServiceStopping
from imagestudio.jobs.clients import current_client
from imagestudio.jobs.events import (
    STOPPED_BEFORE_RUN,
    STOPPED_DURING_JOB,
    queued_event,
    snapshot_events,
    started_event,
    terminal_event,
)
from imagestudio.jobs.failures import job_error
from imagestudio.jobs.model import (
    EventSink,
    JobError,
    JobEvent,
    JobInfo,
    JobProgress,
    JobRequest,
    JobState,
    QueueStats,
    SavedImage,
    new_id,
    request_kind,
)
from imagestudio.jobs.recorder import JobEnd, JobRecorder

if TYPE_CHECKING:
    from imagestudio.jobs.limits import SubmitLimits
    from imagestudio.studio import StudioResult

log = logging.getLogger(__name__)

#: Without measurements, the first Retry-After guesses this many seconds per job.
DEFAULT_JOB_SECONDS = 10.0
#: How many recent run times the Retry-After estimate averages.
DURATIONS_KEPT = 20


class Step(Protocol):
    """A step report as any worker sends it: image ``image`` of ``images``, step ``step`` of ``steps``."""

    @property
    def image(self) -> int: ...
    @property
    def images(self) -> int: ...
    @property
    def step(self) -> int: ...
    @property
    def steps(self) -> int: ...


StepT = TypeVar("StepT", bound=Step)


def request_dump(request: JobRequest) -> dict[str, Any]:
    """The request as JSON for status and history: input images by name and hash, never their pixels."""
    fields = {**request.metadata_fields(), "count": request.count}
    # Round-trip so anything not JSON-native (paths, tuples) is stored the way it will be read.
    dumped: dict[str, Any] = json.loads(json.dumps(fields, default=str))
    return dumped


@dataclass(eq=False)
class Job:
    """A queue's private, mutable record of a job; guarded by the queue's lock."""

    id: str
    #: The typed request; dropped when the job is retired (an edit's input images can be large).
    request: JobRequest | None
    created_at: float
    # What snapshots show of the request, taken once at submission.
    kind: str
    model: str | None
    prompt: str | None
    request_dump: dict[str, Any]
    #: The client address that submitted it, over the API or a page (None: the CLI's own queue, tests).
    client: str | None = None
    state: JobState = JobState.QUEUED
    #: When it (last) joined the waiting line, for the cluster's "nobody can run it" deadline.
    queued_clock: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    finished_at: float | None = None
    progress: JobProgress | None = None
    error: JobError | None = None
    images: tuple[SavedImage, ...] = ()
    #: Runs begun: more than one when a worker died during it and it was run again.
    attempts: int = 0
    #: Set to stop the running job between two steps; ``cancel_reason`` says why (None: not asked).
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    started_clock: float = 0.0
    # (clock, global step index) of the first step seen in this attempt, for the ETA
    first_step: tuple[float, int] | None = None

    @classmethod
    def accept(cls, request: JobRequest, client: str | None) -> Job:
        return cls(
            id=new_id(),
            request=request,
            created_at=time.time(),
            kind=request_kind(request),
            model=request.model,
            prompt=request.prompt,
            request_dump=request_dump(request),
            client=client,
        )

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


class JobBook(ABC):
    """The jobs of one queue and everything said about them; thread-safe.

    A subclass decides where jobs run: it takes waiting jobs off ``_pending`` (lock held), starts each
    with :meth:`_begin` and :meth:`_started`, reports steps through :meth:`_step_reporter`, and ends it
    with :meth:`_finish`.
    """

    def __init__(
        self,
        *,
        max_queue: int,
        recorder: JobRecorder | None = None,
        keep_finished: int = 500,
        limits: SubmitLimits | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._max_queue = max_queue
        self._recorder = recorder
        self._keep_finished = keep_finished
        self._limits = limits
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: collections.deque[Job] = collections.deque()
        #: Running jobs by id, in the order they started.
        self._running: dict[str, Job] = {}
        self._jobs: dict[str, Job] = {}
        self._finished_order: collections.deque[str] = collections.deque()
        self._sinks: dict[str | None, list[EventSink]] = {}
        self._durations: collections.deque[float] = collections.deque(maxlen=DURATIONS_KEPT)
        self._stopping = False

    # ----------------------------------------------------------------- what a subclass says

    @abstractmethod
    def _alive_locked(self) -> bool:
        """Whether a job submitted now can run (lock held)."""

    def _parallelism_locked(self) -> int:
        """How many jobs run at once (lock held): places free up that much faster."""
        return 1

    def _stop_running(self, job: Job) -> None:
        """Ask ``job``'s worker to stop it (lock not held); ``job.cancel`` is already set.

        In this process the handler watches ``job.cancel`` itself, so by default there is no one to tell.
        """
        return

    def _heard_from_locked(self, job: Job) -> None:
        """A step of ``job`` arrived (lock held): a subclass may note that its worker is alive."""
        return

    # ----------------------------------------------------------------- public API

    @property
    def worker_alive(self) -> bool:
        with self._lock:
            return self._alive_locked()

    def submit(self, request: JobRequest, client: str | None = None) -> JobInfo:
        """Queue ``request`` (already validated) and return the new job's snapshot.

        ``client`` (default: the HTTP client being served, see :mod:`imagestudio.jobs.clients`) is
        held to ``max_queued_per_client`` jobs waiting or running. Raises :class:`InvalidRequest` over
        the prompt or image-count limits, :class:`QueueFull` when ``max_queue`` jobs are already
        waiting (or the client has its share), and :class:`ServiceStopping` once the queue is stopping.
        """
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
            job = Job.accept(request, client)
            position = len(self._pending) + 1
            if self._recorder is not None:
                # Recorded before it can run, so a crash at any later point leaves a row to recover.
                self._recorder.submitted(job.info(position), request)
            self._jobs[job.id] = job
            self._pending.append(job)
            self._emit(queued_event(job.id, position))
            self._wake.notify_all()
            return job.info(position)

    def cancel(self, job_id: str) -> JobInfo | None:
        """Cancel a job: at once if it is waiting, between two steps if it is running.

        Returns the job's snapshot (a finished job is left as it is), or None for an unknown id.
        """
        stop = False
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state is JobState.QUEUED:
                self._pending.remove(job)
                self._cancel_queued(job, "cancelled")
                self._emit_positions()
            elif job.state is JobState.RUNNING and job.cancel_reason is None:
                job.cancel_reason = "cancelled"
                job.cancel.set()
                stop = True
            info = job.info(self._position(job))
        if stop:
            self._stop_running(job)
        return info

    def get(self, job_id: str) -> JobInfo | None:
        """The job's snapshot if this queue knows it (recent finished jobs included), else None."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.info(self._position(job))

    def jobs(self) -> list[JobInfo]:
        """Every job this queue remembers: running, then waiting in order, then finished, newest first."""
        with self._lock:
            infos = [job.info() for job in self._running.values()]
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
            running = next(iter(self._running), None)
            return QueueStats(running, len(self._pending), self._max_queue, self._alive_locked())

    def retry_after_s(self) -> int:
        with self._lock:
            return self._retry_after_locked()

    # ----------------------------------------------------------------- a job's life, for the workers

    def _begin(self, job: Job) -> bool:
        """(lock held) ``job``, just taken off ``_pending``, is running; True on its first attempt."""
        first = job.attempts == 0
        job.attempts += 1
        job.state = JobState.RUNNING
        job.progress, job.first_step = None, None
        job.started_clock = time.perf_counter()
        if job.started_at is None:
            job.started_at = time.time()
        self._running[job.id] = job
        self._emit_positions()
        self._emit(started_event(job.info()))
        return first

    def _started(self, job: Job, first: bool) -> None:
        """(lock not held) Record the start of a job's first attempt (a re-run is the same job)."""
        if first and self._recorder is not None:
            recorder = self._recorder
            info = job.info()
            self._quietly(lambda: recorder.started(info))

    def _step_reporter(self, job: Job, preview: Callable[[StepT], object]) -> Callable[[StepT], None]:
        """The ``on_step`` for ``job``'s current attempt: progress with an ETA, as a step event.

        ``preview`` makes what rides on the event (it runs outside the lock).
        """

        def on_step(step: StepT) -> None:
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
            made = preview(step)
            with self._lock:
                if job.state is not JobState.RUNNING:
                    return
                job.progress = progress
                self._heard_from_locked(job)
                self._emit(JobEvent(job.id, "step", progress.as_dict(), preview=made))

        return on_step

    def _finish(
        self,
        job: Job,
        state: JobState,
        error: JobError | None = None,
        result: StudioResult | None = None,
    ) -> None:
        """(lock not held) End a job that ran: record it, then send its terminal event and retire it.

        A result that cannot be recorded fails the job (with the error's own status when it is a
        user error, such as a full disk) and its files are removed: History never misses a result the
        client was given, and no file is left that History does not list.
        """
        from imagestudio.storage.files import discard_files

        finished_at = time.time()
        if state is JobState.CANCELLED:
            error = JobError(job.cancel_reason or "cancelled", "cancelled", 409)
        images = tuple(result.images) if result is not None else ()
        try:
            self._record_end(self._end(job, state, error, images, finished_at, result))
        except Exception as exc:
            if state is not JobState.DONE:
                log.exception("could not record the end of job %s in the history", job.id)
            else:
                log.warning("could not record the result of job %s; it fails", job.id)
                discard_files(image.path for image in images)
                state, error, images = JobState.FAILED, job_error(job.id, exc), ()
                failed = self._end(job, state, error, images, finished_at, None)
                self._quietly(lambda: self._record_end(failed))
        with self._lock:
            job.state, job.error, job.images, job.finished_at = state, error, images, finished_at
            self._running.pop(job.id, None)
            if state is JobState.DONE and job.started_at is not None:
                self._durations.append(finished_at - job.started_at)
            self._emit(terminal_event(job.info()))
            self._retire(job)
            self._wake.notify_all()

    def _stop_jobs(self) -> list[Job]:
        """(lock held) Refuse new jobs, cancel the waiting ones and ask the running ones to stop.

        Returns the running jobs the first time (their workers may need telling), then nothing.
        """
        if self._stopping:
            return []
        self._stopping = True
        while self._pending:
            self._cancel_queued(self._pending.popleft(), STOPPED_BEFORE_RUN)
        running = list(self._running.values())
        for job in running:
            job.cancel_reason = STOPPED_DURING_JOB
            job.cancel.set()
        self._wake.notify_all()
        return running

    # ----------------------------------------------------------------- helpers (lock held)

    def _end_queued(self, job: Job, state: JobState, error: JobError) -> None:
        """End a job that never ran (already off ``_pending``): record, terminal event, retire."""
        job.state, job.finished_at, job.error = state, time.time(), error
        end = JobEnd(job.info())
        self._quietly(lambda: self._record_end(end))
        self._emit(terminal_event(job.info()))
        self._retire(job)

    def _cancel_queued(self, job: Job, reason: str) -> None:
        self._end_queued(job, JobState.CANCELLED, JobError(reason, "cancelled", 409))

    def _check_client_share(self, client: str | None) -> None:
        """One client may not fill the queue for everyone: at most its share of jobs waiting or running."""
        share = self._limits.max_queued_per_client if self._limits is not None else None
        if client is None or share is None:
            return
        mine = sum(1 for job in (*self._pending, *self._running.values()) if job.client == client)
        if mine >= share:
            error = QueueFull(
                f"this client already has {mine} jobs waiting or running (server.max_queued_per_client "
                f"is {share}); retry when one has finished",
                retry_after_s=self._retry_after_locked(),
                waiting=share,
            )
            error.code = "client_queue_full"
            raise error

    def _retire(self, job: Job) -> None:
        job.request = None
        job.finished.set()
        self._sinks.pop(job.id, None)
        self._finished_order.append(job.id)
        while len(self._finished_order) > self._keep_finished:
            self._jobs.pop(self._finished_order.popleft(), None)

    def _position(self, job: Job) -> int | None:
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
        # A place frees up when a running job ends: about one job's time, shared by the parallel workers.
        return max(1, min(3600, math.ceil(per_job / max(1, self._parallelism_locked()))))

    # ----------------------------------------------------------------- recording (any lock state)

    @staticmethod
    def _end(
        job: Job,
        state: JobState,
        error: JobError | None,
        images: tuple[SavedImage, ...],
        finished_at: float,
        result: StudioResult | None,
    ) -> JobEnd:
        """What the recorder is told about a job that ran and ended as ``state``."""
        started = job.started_at or finished_at
        timings: dict[str, float] = {
            "queued_s": round(started - job.created_at, 3),
            "run_s": round(finished_at - started, 3),
        }
        if result is not None:
            timings["elapsed_s"] = round(result.elapsed_s, 3)
        if job.attempts > 1:
            timings["attempts"] = job.attempts
        info = replace(job.info(), state=state, error=error, images=images, finished_at=finished_at)
        extra = dict(result.extra) if result is not None else {}
        return JobEnd(info, job.request, timings, extra)

    def _record_end(self, end: JobEnd) -> None:
        if self._recorder is not None:
            self._recorder.finished(end)

    @staticmethod
    def _quietly(update: Callable[[], None]) -> None:
        """Apply one history update, logging (not raising) a failure: the queue must go on."""
        try:
            update()
        except Exception:
            log.exception("could not update the history")
