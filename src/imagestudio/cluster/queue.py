"""The head's job queue over any number of workers, with model affinity and crash recovery.

It implements the same interface as the in-process queue (:class:`~imagestudio.jobs.backend.JobBackend`),
so the API, the UI, SSE and OpenAI streaming work unchanged; only where a job runs differs. Workers
come and go (:meth:`ClusterQueue.add_worker`, and a worker found dead while running a job); each live
worker is served by one head-side thread that picks its next job with
:func:`~imagestudio.cluster.scheduling.pick_job`.

Invariants, beyond the in-process queue's (one terminal event per accepted job, every job recorded):

* A job whose worker died goes back to the *front* of the queue and runs again on another worker; the
  head writes files and the history row only from a result it received, so the history shows it once.
  After ``max_attempts`` lost workers the job fails (it may be what kills them).
* A job no live worker can hold (its model is on no worker's disk, or no worker is connected) fails
  after ``worker_wait_s`` with the reason, instead of waiting forever.
* Lock order: the queue's lock, then the history store's. Worker calls (which may block on the
  network) are never made with the lock held.
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

from imagestudio.cluster.scheduling import pick_job
from imagestudio.cluster.work import JobFailed, StepReport, WorkerInfo, WorkerLost, WorkResult
from imagestudio.errors import JobCancelled, QueueFull, ServiceStopping
from imagestudio.jobs.events import (
    STOPPED_BEFORE_RUN,
    STOPPED_DURING_JOB,
    queued_event,
    snapshot_events,
    started_event,
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
from imagestudio.jobs.queue import DEFAULT_JOB_SECONDS, GENERIC_FAILURE, QueueStats, request_dump

if TYPE_CHECKING:
    from pathlib import Path

    from imagestudio.cluster.work import Worker
    from imagestudio.jobs.backend import EventSink
    from imagestudio.storage.history import HistoryStore

log = logging.getLogger(__name__)

#: How often the housekeeping thread looks for jobs nobody can run.
HOUSEKEEPING_S = 0.5


@dataclass(eq=False)
class _Job:
    """The queue's private, mutable record of a job; guarded by the queue's lock."""

    id: str
    request: Any
    created_at: float
    state: JobState = JobState.QUEUED
    queued_clock: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    finished_at: float | None = None
    progress: JobProgress | None = None
    error: JobError | None = None
    images: tuple[ResultImage, ...] = ()
    worker: str | None = None
    attempts: int = 0
    cancel_reason: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    started_clock: float = 0.0
    first_step: tuple[float, int] | None = None
    kind: str = field(init=False)
    model: str | None = field(init=False)
    prompt: str | None = field(init=False)
    request_dump: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.kind = request_kind(self.request)
        self.model = getattr(self.request, "model", None)
        self.prompt = getattr(self.request, "prompt", None)
        self.request_dump = request_dump(self.request)

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


@dataclass(eq=False)
class _Seat:
    """The head's view of one live worker."""

    worker: Worker
    info: WorkerInfo
    #: The model it holds (or is loading): set when a job is handed to it.
    model: str | None = None
    job: str | None = None
    jobs_done: int = 0
    joined_at: float = field(default_factory=time.time)
    last_answer_at: float | None = None
    last_extra: dict[str, Any] = field(default_factory=dict)
    thread: threading.Thread | None = None


@dataclass(frozen=True)
class WorkerStatus:
    """One worker as /api/system shows it."""

    name: str
    host: str
    device: str
    gpu: str | None
    models: tuple[str, ...]
    model: str | None
    job: str | None
    jobs_done: int
    last_answer_at: float | None
    memory_plan: str | None


class ClusterQueue:
    """A bounded queue of jobs served by every live worker; thread-safe; started by :meth:`start`."""

    def __init__(
        self,
        *,
        outputs_dir: Path,
        max_queue: int,
        history: HistoryStore | None = None,
        keep_finished: int = 500,
        worker_wait_s: float = 60.0,
        max_attempts: int = 3,
        on_worker_lost: Callable[[Worker], None] | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._outputs_dir = outputs_dir
        self._max_queue = max_queue
        self._history = history
        self._keep_finished = keep_finished
        self._worker_wait_s = worker_wait_s
        self._max_attempts = max_attempts
        self._on_worker_lost = on_worker_lost
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: collections.deque[_Job] = collections.deque()
        self._running: dict[str, _Job] = {}
        self._jobs: dict[str, _Job] = {}
        self._finished_order: collections.deque[str] = collections.deque()
        self._sinks: dict[str | None, list[EventSink]] = {}
        self._durations: collections.deque[float] = collections.deque(maxlen=20)
        self._seats: dict[str, _Seat] = {}
        self._housekeeper: threading.Thread | None = None
        self._started = False
        self._stopping = False

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the housekeeping thread and the threads of workers added before (once)."""
        with self._lock:
            if self._started:
                return
            if self._stopping:
                raise RuntimeError("a stopped queue cannot be restarted")
            self._started = True
            self._housekeeper = threading.Thread(
                target=self._housekeep, name="imagestudio-cluster-housekeeping", daemon=True
            )
            self._housekeeper.start()
            for seat in self._seats.values():
                self._start_seat(seat)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new jobs, cancel the waiting ones and the running ones, and wait for the threads."""
        with self._lock:
            first = not self._stopping
            self._stopping = True
            running: list[tuple[Worker, str]] = []
            if first:
                while self._pending:
                    self._cancel_queued(self._pending.popleft(), STOPPED_BEFORE_RUN)
                for job in self._running.values():
                    job.cancel_reason = STOPPED_DURING_JOB
                    seat = self._seats.get(job.worker or "")
                    if seat is not None:
                        running.append((seat.worker, job.id))
            self._wake.notify_all()
            threads = [seat.thread for seat in self._seats.values() if seat.thread is not None]
            seats = list(self._seats.values())
            if self._housekeeper is not None:
                threads.append(self._housekeeper)
        for worker, job_id in running:
            self._safely(worker.cancel, job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            if thread is threading.current_thread():
                continue
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        for seat in seats:
            self._safely(seat.worker.close)

    @property
    def worker_alive(self) -> bool:
        """True while at least one worker is connected (a job submitted now can start)."""
        with self._lock:
            return bool(self._seats) and not self._stopping

    # ----------------------------------------------------------------- workers

    def add_worker(self, worker: Worker) -> None:
        """Start serving jobs on a new worker (a GPU that joined)."""
        info = worker.info
        with self._lock:
            if self._stopping:
                self._safely(worker.close)
                return
            if info.name in self._seats:
                raise ValueError(f"worker {info.name} is already connected")
            seat = _Seat(worker, info, last_answer_at=time.time())
            self._seats[info.name] = seat
            log.info("worker %s joined (%s on %s)", info.name, info.gpu or info.device, info.host)
            if self._started:
                self._start_seat(seat)
            self._wake.notify_all()

    def workers(self) -> list[WorkerStatus]:
        """Every live worker: where it is, what it holds and runs, when it last answered."""
        with self._lock:
            return [
                WorkerStatus(
                    name=seat.info.name,
                    host=seat.info.host,
                    device=seat.info.device,
                    gpu=seat.info.gpu,
                    models=seat.info.models,
                    model=seat.model,
                    job=seat.job,
                    jobs_done=seat.jobs_done,
                    last_answer_at=seat.last_answer_at,
                    memory_plan=(seat.last_extra.get("memory") or {}).get("plan"),
                )
                for seat in self._seats.values()
            ]

    def worker(self, name: str) -> Worker | None:
        """The handle of a live worker by name (None once it left)."""
        with self._lock:
            seat = self._seats.get(name)
            return seat.worker if seat is not None else None

    def _start_seat(self, seat: _Seat) -> None:
        seat.thread = threading.Thread(
            target=self._serve, args=(seat,), name=f"imagestudio-{seat.info.name}", daemon=True
        )
        seat.thread.start()

    # ----------------------------------------------------------------- public API

    def submit(self, request: Any) -> JobInfo:
        """Queue ``request`` (already validated); QueueFull past ``max_queue`` waiting jobs."""
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
            job = _Job(id=new_id(), request=request, created_at=time.time())
            if self._history is not None:
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
            self._wake.notify_all()
            return job.info(position)

    def cancel(self, job_id: str) -> JobInfo | None:
        """Drop a waiting job at once; ask a running one's worker to stop after the current step."""
        target: Worker | None = None
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
                seat = self._seats.get(job.worker or "")
                target = seat.worker if seat is not None else None
            info = job.info(self._position(job))
        if target is not None:
            self._safely(target.cancel, job_id)
        return info

    def get(self, job_id: str) -> JobInfo | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.info(self._position(job))

    def jobs(self) -> list[JobInfo]:
        with self._lock:
            infos = [job.info() for job in self._running.values()]
            infos += [job.info(index) for index, job in enumerate(self._pending, start=1)]
            infos += [self._jobs[job_id].info() for job_id in reversed(self._finished_order)]
            return infos

    def wait(self, job_id: str, timeout: float | None = None) -> JobInfo:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        job.finished.wait(timeout)
        with self._lock:
            return job.info(self._position(job))

    def subscribe(self, job_id: str | None, sink: EventSink) -> Callable[[], None]:
        """Same contract as the in-process queue: catch-up events atomically with registering."""
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
            alive = bool(self._seats) and not self._stopping
            return QueueStats(running, len(self._pending), self._max_queue, alive)

    def retry_after_s(self) -> int:
        with self._lock:
            return self._retry_after_locked()

    # ----------------------------------------------------------------- serving one worker

    def _serve(self, seat: _Seat) -> None:
        name = seat.info.name
        while True:
            with self._lock:
                job = self._next_job(seat)
                if job is None:
                    return
                first_run = job.attempts == 0
                job.attempts += 1
                job.state, job.worker = JobState.RUNNING, name
                job.progress, job.first_step = None, None
                job.started_clock = time.perf_counter()
                if job.started_at is None:
                    job.started_at = time.time()
                seat.model, seat.job = job.model, job.id
                self._running[job.id] = job
                # This worker is busy now: a job left to it as the idle holder of its model is fair
                # game for the others again.
                self._wake.notify_all()
                self._emit_positions()
                self._emit(started_event(job.info()))
                request = job.request
            if first_run:
                self._record_start(job)
            try:
                result = seat.worker.run(job.id, request, self._step_reporter(job))
            except WorkerLost as exc:
                self._lose(seat, job, exc)
                return
            except JobCancelled:
                self._finish(seat, job, JobState.CANCELLED, None)
            except JobFailed as exc:
                self._finish(seat, job, JobState.FAILED, None, exc.error)
            except Exception:
                log.exception("job %s failed on worker %s with an unexpected error", job.id, name)
                self._finish(seat, job, JobState.FAILED, None, JobError(GENERIC_FAILURE))
            else:
                self._finish(seat, job, JobState.DONE, result)

    def _next_job(self, seat: _Seat) -> _Job | None:
        """Wait (lock held) for the job this worker should run next; None when it must stop serving."""
        name = seat.info.name
        while True:
            if self._stopping or self._seats.get(name) is not seat:
                return None
            others = [s for s in self._seats.values() if s is not seat and s.model is not None]
            job = pick_job(
                self._pending,
                model_of=lambda j: j.model,
                held=seat.model,
                held_by_others={s.model for s in others if s.model is not None},
                held_by_idle_others={s.model for s in others if s.model is not None and s.job is None},
                can_hold=lambda model: model is None or model in seat.info.models,
            )
            if job is not None:
                self._pending.remove(job)
                return job
            self._wake.wait()

    def _step_reporter(self, job: _Job) -> Callable[[StepReport], None]:
        def on_step(step: StepReport) -> None:
            now = time.perf_counter()
            index = (step.image - 1) * step.steps + step.step
            total = step.images * step.steps
            eta = None
            if job.first_step is None:
                job.first_step = (now, index)
            elif index > job.first_step[1]:
                per_step = (now - job.first_step[0]) / (index - job.first_step[1])
                eta = per_step * (total - index)
            progress = JobProgress(
                step.image, step.images, step.step, step.steps, now - job.started_clock, eta
            )
            with self._lock:
                if job.state is not JobState.RUNNING:
                    return
                job.progress = progress
                seat = self._seats.get(job.worker or "")
                if seat is not None:
                    seat.last_answer_at = time.time()
                self._emit(JobEvent(job.id, "step", progress.as_dict(), preview=step.preview))

        return on_step

    def _lose(self, seat: _Seat, job: _Job, exc: BaseException) -> None:
        """The worker died mid-job: drop it, and put the job back at the front (or end it)."""
        log.warning("worker %s was lost during job %s: %s", seat.info.name, job.id, exc)
        with self._lock:
            if self._seats.get(seat.info.name) is seat:
                del self._seats[seat.info.name]
            self._running.pop(job.id, None)
            if job.cancel_reason is not None:
                requeue, state, error = False, JobState.CANCELLED, None
            elif job.attempts >= self._max_attempts:
                requeue, state = False, JobState.FAILED
                error = JobError(
                    f"the job's worker died {job.attempts} times while running it; it was not retried "
                    "again (it may be what kills them: try a smaller size or fewer images)",
                    code="worker_lost",
                    details={"attempts": str(job.attempts)},
                )
            else:
                requeue, state, error = True, JobState.QUEUED, None
            if requeue:
                job.state, job.worker, job.progress = JobState.QUEUED, None, None
                job.queued_clock = time.monotonic()
                self._pending.appendleft(job)
                self._emit_positions()
            self._wake.notify_all()
        if self._on_worker_lost is not None:
            self._safely(self._on_worker_lost, seat.worker)
        self._safely(seat.worker.close)
        if not requeue:
            self._finish(None, job, state, None, error)

    def _finish(
        self,
        seat: _Seat | None,
        job: _Job,
        state: JobState,
        result: WorkResult | None,
        error: JobError | None = None,
    ) -> None:
        finished_at = time.time()
        if state is JobState.CANCELLED:
            error = JobError(job.cancel_reason or "cancelled", "cancelled", 409)
        images: tuple[ResultImage, ...] = ()
        if result is not None:
            try:
                images = self._save(job, result, finished_at)
            except Exception:
                log.exception("could not save or record the images of job %s", job.id)
                state, error, images = JobState.FAILED, JobError(GENERIC_FAILURE), ()
        elif self._history is not None:
            timings = self._timings(job, finished_at, None)
            self._record(
                lambda history: history.finish_job(job.id, state, finished_at, error=error, timings=timings)
            )
        with self._lock:
            job.state, job.error, job.images, job.finished_at = state, error, images, finished_at
            self._running.pop(job.id, None)
            if seat is not None:
                seat.job = None
                seat.last_answer_at = finished_at
                if result is not None:
                    seat.jobs_done += 1
                    seat.last_extra = result.extra
                    seat.model = result.model
            if state is JobState.DONE and job.started_at is not None:
                self._durations.append(finished_at - job.started_at)
            self._emit(terminal_event(job.info()))
            self._retire(job)
            self._wake.notify_all()

    def _save(self, job: _Job, result: WorkResult, finished_at: float) -> tuple[ResultImage, ...]:
        """Write the worker's PNGs into the outputs folder and the job's history row; the head's disk only."""
        from imagestudio.storage.files import write_new_file

        images, records = [], []
        for output in result.images:
            path = write_new_file(self._outputs_dir, output.basename, ".png", output.png)
            image = ResultImage(new_id(), output.seed, output.width, output.height, str(path))
            images.append(image)
            records.append((image, path, output))
        if self._history is not None:
            from imagestudio.storage.history import NewImage

            self._history.finish_job(
                job.id,
                JobState.DONE,
                finished_at,
                timings=self._timings(job, finished_at, result),
                extra=result.extra,
                images=[
                    NewImage(
                        id=image.id,
                        path=path,
                        seed=image.seed,
                        width=image.width,
                        height=image.height,
                        prompt=output.metadata.get("prompt") or job.prompt or "",
                        negative_prompt=output.metadata.get("negative_prompt"),
                        model=result.model,
                        metadata=output.metadata,
                    )
                    for image, path, output in records
                ],
            )
        return tuple(images)

    @staticmethod
    def _timings(job: _Job, finished_at: float, result: WorkResult | None) -> dict[str, float]:
        started = job.started_at or finished_at
        timings = {
            "queued_s": round(started - job.created_at, 3),
            "run_s": round(finished_at - started, 3),
        }
        if result is not None:
            timings["elapsed_s"] = round(result.elapsed_s, 3)
        if job.attempts > 1:
            timings["attempts"] = job.attempts
        return timings

    # ----------------------------------------------------------------- housekeeping

    def _housekeep(self) -> None:
        """Fail the waiting jobs that no live worker can hold once they waited ``worker_wait_s``."""
        while True:
            with self._lock:
                if self._stopping:
                    return
                self._wake.wait(HOUSEKEEPING_S)
                if self._stopping:
                    return
                now = time.monotonic()
                held = {model for seat in self._seats.values() for model in seat.info.models}
                stuck = [
                    job
                    for job in self._pending
                    if job.model not in held and now - job.queued_clock >= self._worker_wait_s
                ]
                for job in stuck:
                    self._pending.remove(job)
                    self._fail_queued(job, self._no_worker_error(job))
                if stuck:
                    self._emit_positions()

    # ----------------------------------------------------------------- helpers (lock held)

    def _no_worker_error(self, job: _Job) -> JobError:
        if self._seats:
            message = (
                f"no worker can run {job.model}: none of the {len(self._seats)} connected workers has "
                "it on its disk (download it on a worker box, or connect one that has it)"
            )
            return JobError(
                message, "service_unavailable", 503, code="no_worker_for_model", details={"model": job.model}
            )
        message = (
            f"no worker is connected: the job waited {self._worker_wait_s:g}s (cluster.worker_wait_s) "
            "for one (start `imagestudio worker` on a GPU box)"
        )
        seconds = f"{self._worker_wait_s:g}"
        return JobError(message, "service_unavailable", 503, code="no_worker", details={"seconds": seconds})

    def _fail_queued(self, job: _Job, error: JobError) -> None:
        job.state, job.finished_at = JobState.FAILED, time.time()
        job.error = error
        self._record_end(job)
        self._emit(terminal_event(job.info()))
        self._retire(job)

    def _cancel_queued(self, job: _Job, reason: str) -> None:
        job.state, job.finished_at = JobState.CANCELLED, time.time()
        job.error = JobError(reason, "cancelled", 409)
        self._record_end(job)
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
        # Several workers free places in parallel.
        return max(1, min(3600, math.ceil(per_job / max(1, len(self._seats)))))

    def _record_start(self, job: _Job) -> None:
        started_at = job.started_at or time.time()
        self._record(lambda history: history.mark_running(job.id, started_at))

    def _record_end(self, job: _Job) -> None:
        finished_at = job.finished_at or time.time()
        self._record(lambda history: history.finish_job(job.id, job.state, finished_at, error=job.error))

    def _record(self, update: Callable[[HistoryStore], None]) -> None:
        """Apply one history update, logging (not raising) a failure: the queue must go on."""
        if self._history is None:
            return
        try:
            update(self._history)
        except Exception:
            log.exception("could not update the history")

    @staticmethod
    def _safely(call: Callable[..., Any], *args: Any) -> None:
        try:
            call(*args)
        except Exception:
            log.warning("a worker call failed", exc_info=True)
