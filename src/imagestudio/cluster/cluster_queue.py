"""The head's job queue over any number of workers, with model affinity and crash recovery.

It implements the same interface as the in-process queue
(:class:`~imagestudio.jobs.queue_protocol.JobBackend`) over the same bookkeeping
(:class:`~imagestudio.jobs.book.JobBook`: limits, positions, events, cancel, history records), so the
API, the UI, SSE and OpenAI streaming work unchanged; only where a job runs differs. Workers come and go
(:meth:`ClusterQueue.add_worker`, and a worker found dead while running a job); each live worker is
served by one head-side thread that picks its next job with
:func:`~imagestudio.cluster.scheduling.pick_job`.

Invariants, beyond the book's (one terminal event per accepted job, every job recorded):

* A job whose worker died goes back to the *front* of the queue and runs again on another worker; the
  head writes files and the history row only from a result it received, so the history shows it once.
  After ``max_attempts`` lost workers the job fails (it may be what kills them).
* The head writes a result's files all or none: a full disk fails the job (507, naming the folder)
  and leaves no file behind.
* A job no live worker can hold (its model is on no worker's disk, or no worker is connected) fails
  after ``worker_wait_s`` with the reason, instead of waiting forever.
* An upscale job needs no diffusion model: any worker that can run its upscaler takes it as if it were
  a job for the model it already holds, and keeps that model (the upscaler runs beside it). A generation
  with a hires pass needs its model *and* its upscaler on the same worker.
* Lock order: the queue's lock, then the history store's. Worker calls (which may block on the
  network) and file writes are never made with the lock held.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagestudio.cluster.scheduling import pick_job
from imagestudio.cluster.work import JobFailed, StepReport, WorkerInfo, WorkerLost, WorkResult
from imagestudio.errors import JobCancelled
from imagestudio.jobs.book import Job, JobBook
from imagestudio.jobs.failures import job_error
from imagestudio.jobs.model import JobError, JobState

if TYPE_CHECKING:
    from pathlib import Path

    from imagestudio.cluster.work import Worker
    from imagestudio.jobs.limits import SubmitLimits
    from imagestudio.jobs.recorder import JobRecorder
    from imagestudio.studio import StudioResult

log = logging.getLogger(__name__)

#: How often the housekeeping thread looks for jobs nobody can run.
HOUSEKEEPING_S = 0.5


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
    #: Every model load it reported, in order.
    loaded: tuple[str, ...] = ()
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
    address: str | None = None
    #: Its memory and each model's plan there (``capacity.memory_summary`` / ``ModelFit.as_dict``).
    memory: dict[str, Any] = field(default_factory=dict)
    plans: tuple[dict[str, Any], ...] = ()
    #: Model loads so far, per model.
    loads: dict[str, int] = field(default_factory=dict)
    #: Each known upscaler there (``capacity.UpscalerFit.as_dict``).
    upscalers: tuple[dict[str, Any], ...] = ()


class ClusterQueue(JobBook):
    """A bounded queue of jobs served by every live worker; thread-safe; started by :meth:`start`."""

    def __init__(
        self,
        *,
        outputs_dir: Path,
        max_queue: int,
        recorder: JobRecorder | None = None,
        keep_finished: int = 500,
        limits: SubmitLimits | None = None,
        worker_wait_s: float = 60.0,
        max_attempts: int = 3,
        on_worker_lost: Callable[[Worker], None] | None = None,
    ) -> None:
        super().__init__(max_queue=max_queue, recorder=recorder, keep_finished=keep_finished, limits=limits)
        self._outputs_dir = outputs_dir
        self._worker_wait_s = worker_wait_s
        self._max_attempts = max_attempts
        self._on_worker_lost = on_worker_lost
        self._seats: dict[str, _Seat] = {}
        self._housekeeper: threading.Thread | None = None
        self._started_serving = False

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the housekeeping thread and the threads of workers added before (once)."""
        with self._lock:
            if self._started_serving:
                return
            if self._stopping:
                raise RuntimeError("a stopped queue cannot be restarted")
            self._started_serving = True
            self._housekeeper = threading.Thread(
                target=self._housekeep, name="imagestudio-cluster-housekeeping", daemon=True
            )
            self._housekeeper.start()
            for seat in self._seats.values():
                self._start_seat(seat)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new jobs, cancel the waiting ones and the running ones, and wait for the threads."""
        with self._lock:
            running = []
            for job in self._stop_jobs():
                seat = self._seat_of(job)
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

    def _alive_locked(self) -> bool:
        """At least one worker is connected (a job submitted now can start)."""
        return bool(self._seats) and not self._stopping

    def _parallelism_locked(self) -> int:
        # Several workers free places in parallel.
        return len(self._seats)

    def _stop_running(self, job: Job) -> None:
        with self._lock:
            seat = self._seat_of(job)
        if seat is not None:
            self._safely(seat.worker.cancel, job.id)

    def _heard_from_locked(self, job: Job) -> None:
        seat = self._seat_of(job)
        if seat is not None:
            seat.last_answer_at = time.time()

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
            if self._started_serving:
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
                    address=seat.info.address,
                    memory=dict(seat.info.memory),
                    plans=tuple(fit.as_dict() for fit in seat.info.plans),
                    loads={model: seat.loaded.count(model) for model in dict.fromkeys(seat.loaded)},
                    upscalers=tuple(fit.as_dict() for fit in seat.info.upscalers),
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

    def _seat_of(self, job: Job) -> _Seat | None:
        """(lock held) The live worker running ``job``, if any."""
        return next((seat for seat in self._seats.values() if seat.job == job.id), None)

    # ----------------------------------------------------------------- serving one worker

    def _serve(self, seat: _Seat) -> None:
        while True:
            with self._lock:
                job = self._next_job(seat)
                if job is None:
                    return
                if not _is_upscale(job):  # an upscaler runs beside the model the worker holds
                    seat.model = job.model
                seat.job = job.id
                first = self._begin(job)
                # This worker is busy now: a job left to it as the idle holder of its model is fair
                # game for the others again.
                self._wake.notify_all()
                request = job.request
            assert request is not None  # dropped only when the job is retired
            self._started(job, first)
            try:
                work = seat.worker.run(job.id, request, self._step_reporter(job, _sent_preview))
            except WorkerLost as exc:
                self._lose(seat, job, exc)
                return
            except JobCancelled:
                self._served(seat, job, JobState.CANCELLED)
            except JobFailed as exc:
                self._served(seat, job, JobState.FAILED, exc.error)
            except Exception as exc:  # noqa: BLE001 - a transport bug: logged, the job fails, serving goes on
                self._served(seat, job, JobState.FAILED, job_error(job.id, exc))
            else:
                self._served(seat, job, JobState.DONE, work=work)

    def _next_job(self, seat: _Seat) -> Job | None:
        """Wait (lock held) for the job this worker should run next; None when it must stop serving."""
        name = seat.info.name
        while True:
            if self._stopping or self._seats.get(name) is not seat:
                return None
            others = [s for s in self._seats.values() if s is not seat and s.model is not None]
            job = pick_job(
                (j for j in self._pending if can_run(seat.info, j)),
                # An upscale costs no load anywhere: it counts as a job for the model this worker holds.
                model_of=lambda j: seat.model if _is_upscale(j) else j.model,
                held=seat.model,
                held_by_others={s.model for s in others if s.model is not None},
                held_by_idle_others={s.model for s in others if s.model is not None and s.job is None},
                faster_idle_elsewhere=self._faster_idle_elsewhere(seat),
            )
            if job is not None:
                self._pending.remove(job)
                return job
            self._wake.wait()

    def _faster_idle_elsewhere(self, seat: _Seat) -> set[str]:
        """(lock held) Models an idle other worker runs faster than ``seat`` would, as planned."""
        idle = [s for s in self._seats.values() if s is not seat and s.job is None]
        faster = set()
        for model in seat.info.models:
            mine = seat.info.cost(model)
            if mine is None:
                continue
            for other in idle:
                theirs = other.info.cost(model)
                if model in other.info.models and theirs is not None and theirs < mine:
                    faster.add(model)
                    break
        return faster

    def _served(
        self,
        seat: _Seat,
        job: Job,
        state: JobState,
        error: JobError | None = None,
        work: WorkResult | None = None,
    ) -> None:
        """The worker answered for ``job``: free its seat, write the result's files, end the job."""
        result = None
        if work is not None:
            try:
                result = self._save(work)
            except Exception as exc:  # noqa: BLE001 - a full disk (507) or a bug: the job fails, not the seat
                state, error = JobState.FAILED, job_error(job.id, exc)
        with self._lock:
            # Before the terminal event: whoever hears it sees the worker free again.
            seat.job = None
            seat.last_answer_at = time.time()
            if work is not None:
                seat.jobs_done += 1
                if not _is_upscale(job):
                    # An upscale's result names its upscaler; the held model and its placement stay.
                    seat.last_extra, seat.model = work.extra, work.model
                seat.loaded = work.loaded or seat.loaded
        self._finish(job, state, error, result)

    def _save(self, work: WorkResult) -> StudioResult:
        """Write the worker's PNGs into the outputs folder, all or none; the head's disk only."""
        from imagestudio.storage.files import write_new_files
        from imagestudio.storage.saved_image import SavedImage, new_image_id
        from imagestudio.studio import StudioResult

        paths = write_new_files(
            self._outputs_dir, [(output.basename, ".png", output.png) for output in work.images]
        )
        images = [
            SavedImage(new_image_id(), path, output.seed, output.width, output.height, output.metadata)
            for output, path in zip(work.images, paths, strict=True)
        ]
        return StudioResult(work.model, images, work.elapsed_s, work.extra)

    def _lose(self, seat: _Seat, job: Job, exc: BaseException) -> None:
        """The worker died mid-job: drop it, and put the job back at the front (or end it)."""
        log.warning("worker %s was lost during job %s: %s", seat.info.name, job.id, exc)
        error = None
        with self._lock:
            if self._seats.get(seat.info.name) is seat:
                del self._seats[seat.info.name]
            self._running.pop(job.id, None)
            if job.cancel_reason is not None:
                requeue, state = False, JobState.CANCELLED
            elif job.attempts >= self._max_attempts:
                requeue, state = False, JobState.FAILED
                error = JobError(
                    f"the job's worker died {job.attempts} times while running it; it was not retried "
                    "again (it may be what kills them: try a smaller size or fewer images)",
                    code="worker_lost",
                    details={"attempts": str(job.attempts)},
                )
            else:
                requeue, state = True, JobState.QUEUED
            if requeue:
                job.state, job.progress = JobState.QUEUED, None
                job.queued_clock = time.monotonic()
                self._pending.appendleft(job)
                self._emit_positions()
            self._wake.notify_all()
        if self._on_worker_lost is not None:
            self._safely(self._on_worker_lost, seat.worker)
        self._safely(seat.worker.close)
        if not requeue:
            self._finish(job, state, error)

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
                infos = [seat.info for seat in self._seats.values()]
                stuck = [
                    job
                    for job in self._pending
                    if now - job.queued_clock >= self._worker_wait_s
                    and not any(can_run(info, job) for info in infos)
                ]
                for job in stuck:
                    self._pending.remove(job)
                    self._end_queued(job, JobState.FAILED, self._no_worker_error(job))
                if stuck:
                    self._emit_positions()

    def _no_worker_error(self, job: Job) -> JobError:
        """(lock held) Why nobody can run ``job``."""
        upscaler = upscaler_of(job.request)
        needs_model = not _is_upscale(job)
        if upscaler is not None and any(
            not needs_model or job.model in seat.info.models for seat in self._seats.values()
        ):
            # The model is there (or none is needed): the upscaler is what no worker can run. Each box's
            # reason once, so a team without the upscale extra reads one line that names it.
            reasons = dict.fromkeys(
                seat.info.why_not_upscale(upscaler)
                for seat in self._seats.values()
                if not needs_model or job.model in seat.info.models
            )
            message = (
                f"no connected worker can run upscaler {upscaler}: {'; '.join(reasons)} "
                "(the System page and /api/system list each worker's upscalers)"
            )
            details = {"upscaler": upscaler, "reason": "; ".join(reasons)}
            return JobError(
                message, "service_unavailable", 503, code="no_worker_for_upscaler", details=details
            )
        if self._seats:
            message = (
                f"no worker can run {job.model}: none of the {len(self._seats)} connected workers has "
                "it on its disk with the memory to run it (/api/system shows each box's plans; download "
                "it on a box that fits it, or connect one)"
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

    @staticmethod
    def _safely(call: Callable[..., Any], *args: Any) -> None:
        try:
            call(*args)
        except Exception:
            log.warning("a worker call failed", exc_info=True)


def upscaler_of(request: object) -> str | None:
    """The upscaler a job runs: an upscale's own, or a generation's hires pass's (None: no upscaler)."""
    from imagestudio.job_requests import GenerateRequest, UpscaleRequest

    if isinstance(request, UpscaleRequest):
        return request.model
    if isinstance(request, GenerateRequest) and request.hires_scale is not None:
        return request.hires_upscaler
    return None


def can_run(info: WorkerInfo, job: Job) -> bool:
    """Whether the worker described by ``info`` can run ``job``: its model (an upscale needs none) and the
    upscaler it runs, if any, are both there."""
    if not _is_upscale(job) and job.model is not None and job.model not in info.models:
        return False
    upscaler = upscaler_of(job.request)
    return upscaler is None or info.can_upscale(upscaler)


def _is_upscale(job: Job) -> bool:
    return job.kind == "upscale"


def _sent_preview(step: StepReport) -> object:
    """A worker makes its previews itself (from latents that never leave it) and sends them with the step."""
    return step.preview
