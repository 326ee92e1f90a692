"""The job queue: ordering, events, cancellation, limits, failures, shutdown, and asyncio consumers.

Most tests drive the queue with plain callables as runners (the queue's logic is what is under test);
the last one runs the real studio on the tiny model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from imagestudio.engine.pipeline_calls import StepProgress
from imagestudio.errors import (
    BadOutput,
    InvalidRequest,
    JobCancelled,
    JobTimedOut,
    ModelNotAvailable,
    QueueFull,
    ServiceStopping,
)
from imagestudio.history.recorder import HistoryRecorder
from imagestudio.history.store import HistoryStore
from imagestudio.job_requests import GenerateRequest
from imagestudio.jobs.aio import ClientDisconnected, job_events, wait_for_job
from imagestudio.jobs.events import STOPPED_BEFORE_RUN
from imagestudio.jobs.failures import GENERIC_FAILURE
from imagestudio.jobs.local_queue import JobQueue
from imagestudio.jobs.model import JobState
from imagestudio.storage.saved_image import SavedImage, new_image_id
from imagestudio.studio import StudioResult

WAIT = 30.0


def request(prompt: str = "кот", **fields: object) -> GenerateRequest:
    return GenerateRequest.build(model="tiny-z-image", prompt=prompt, seed=5, width=16, height=16, **fields)


class ScriptedRunner:
    """A runner that makes ``steps`` steps per job, optionally pausing at each until released."""

    def __init__(self, outputs: Path, steps: int = 3, paused: bool = False) -> None:
        self.outputs = outputs
        self.steps = steps
        self.release = threading.Event()
        if not paused:
            self.release.set()
        self.entered = threading.Event()
        self.failures: dict[str, BaseException] = {}

    def __call__(self, req, on_step, cancel) -> StudioResult:
        self.entered.set()
        if req.prompt in self.failures:
            raise self.failures[req.prompt]
        for step in range(1, self.steps + 1):
            assert self.release.wait(WAIT)
            if cancel.is_set():
                raise JobCancelled("cancelled")
            on_step(StepProgress(1, 1, step, self.steps))
        self.outputs.mkdir(parents=True, exist_ok=True)
        path = self.outputs / f"{req.prompt}-{time.perf_counter_ns()}.png"
        Image.new("RGB", (16, 16), "red").save(path)
        meta = {"prompt": req.prompt, "seed": req.seed}
        return StudioResult(req.model, [SavedImage(new_image_id(), path, req.seed or 0, 16, 16, meta)], 0.01)


class Recorder:
    """An event sink that keeps every event, per job, in arrival order (thread-safe by the GIL)."""

    def __init__(self) -> None:
        self.by_job: dict[str, list[tuple[str, dict]]] = defaultdict(list)

    def __call__(self, event) -> None:
        self.by_job[event.job_id].append((event.type, event.data))

    def types(self, job_id: str) -> list[str]:
        return [kind for kind, _ in self.by_job[job_id]]


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


@pytest.fixture
def history(tmp_path: Path, outputs: Path):
    store = HistoryStore(tmp_path / "history.sqlite3", outputs)
    yield store
    store.close()


@pytest.fixture
def make_queue(history: HistoryStore):
    queues: list[JobQueue] = []

    def make(runner, max_queue: int = 8, keep_finished: int = 100) -> JobQueue:
        queue = JobQueue(
            runner, max_queue=max_queue, recorder=HistoryRecorder(history), keep_finished=keep_finished
        )
        queue.start()
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        queue.stop(timeout=WAIT)


def test_jobs_run_in_order_with_events_positions_and_cancel_while_queued(
    make_queue, outputs, history
) -> None:
    runner = ScriptedRunner(outputs, steps=3, paused=True)
    queue = make_queue(runner)
    events = Recorder()
    queue.subscribe(None, events)

    first = queue.submit(request("first"))
    assert runner.entered.wait(WAIT)
    second = queue.submit(request("second"))
    third = queue.submit(request("third"))
    assert queue.get(first.id).state is JobState.RUNNING
    assert (queue.get(second.id).queue_position, queue.get(third.id).queue_position) == (1, 2)

    cancelled = queue.cancel(second.id)
    assert cancelled.state is JobState.CANCELLED
    assert queue.get(third.id).queue_position == 1
    runner.release.set()
    done_first = queue.wait(first.id, WAIT)
    done_third = queue.wait(third.id, WAIT)

    assert events.types(first.id) == ["queued", "started", "step", "step", "step", "done"]
    assert events.types(second.id) == ["queued", "cancelled"]
    assert events.types(third.id) == ["queued", "queued", "started", "step", "step", "step", "done"]
    assert [data["position"] for kind, data in events.by_job[third.id] if kind == "queued"] == [2, 1]
    steps = [data for kind, data in events.by_job[first.id] if kind == "step"]
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert [s["fraction"] for s in steps] == sorted(s["fraction"] for s in steps)
    assert steps[0]["eta_s"] is None and steps[-1]["eta_s"] is not None
    done_data = events.by_job[first.id][-1][1]
    assert done_data["images"] == [image.public() for image in done_first.images]
    assert "path" not in done_data["images"][0]

    assert done_first.state is JobState.DONE and done_third.state is JobState.DONE
    assert done_first.started_at <= done_third.started_at
    assert [h.state for h in map(history.get_job, (first.id, second.id, third.id))] == [
        JobState.DONE,
        JobState.CANCELLED,
        JobState.DONE,
    ]
    assert history.list_images().total == 2
    assert Path(done_first.images[0].path).is_file()


def test_cancel_running_job_between_steps(make_queue, outputs, history) -> None:
    runner = ScriptedRunner(outputs, steps=50, paused=True)
    queue = make_queue(runner)
    job = queue.submit(request())
    assert runner.entered.wait(WAIT)
    assert queue.cancel(job.id).state is JobState.RUNNING  # takes effect at the next step boundary
    runner.release.set()
    final = queue.wait(job.id, WAIT)
    assert final.state is JobState.CANCELLED
    assert final.images == ()
    assert history.get_job(job.id).state is JobState.CANCELLED
    assert not outputs.exists() or list(outputs.iterdir()) == []
    assert queue.cancel(job.id).state is JobState.CANCELLED  # idempotent on a finished job
    assert queue.cancel("unknown") is None


def test_full_queue_refuses_and_drops_nothing_accepted(make_queue, outputs) -> None:
    runner = ScriptedRunner(outputs, steps=1, paused=True)
    queue = make_queue(runner, max_queue=2)
    running = queue.submit(request("a"))
    assert runner.entered.wait(WAIT)
    waiting = [queue.submit(request("b")), queue.submit(request("c"))]
    with pytest.raises(QueueFull) as refused:
        queue.submit(request("d"))
    assert refused.value.http_status == 429
    assert refused.value.retry_after_s >= 1
    assert queue.stats().queued == 2
    runner.release.set()
    for job in (running, *waiting):
        assert queue.wait(job.id, WAIT).state is JobState.DONE
    assert queue.submit(request("e"))  # room again


def test_a_failing_job_never_stops_the_worker(make_queue, outputs, history, caplog) -> None:
    runner = ScriptedRunner(outputs, steps=1)
    runner.failures = {
        "bug": ZeroDivisionError("division by zero"),
        "user": InvalidRequest("width 40 is not a multiple of 16", param="width"),
        "missing": ModelNotAvailable("z-image-turbo is not on this machine", param="model"),
        "black": BadOutput("the model produced an all-black image"),
        "exit": SystemExit(3),
        "oom": RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    }
    queue = make_queue(runner)
    with caplog.at_level(logging.ERROR, logger="imagestudio.jobs.local_queue"):
        results = {
            name: queue.wait(queue.submit(request(name)).id, WAIT) for name in [*runner.failures, "fine"]
        }
    errors = {name: info.error for name, info in results.items()}
    assert errors["bug"].message == GENERIC_FAILURE
    assert "division" not in errors["bug"].message
    assert (errors["user"].message, errors["user"].http_status, errors["user"].param) == (
        "width 40 is not a multiple of 16",
        400,
        "width",
    )
    assert (errors["missing"].http_status, errors["missing"].type) == (503, "model_not_available")
    assert "all-black" in errors["black"].message
    assert errors["exit"].message == GENERIC_FAILURE
    # Out of memory is one status everywhere: errors.OutOfMemory's.
    assert (errors["oom"].http_status, errors["oom"].type, errors["oom"].code) == (
        507,
        "insufficient_memory",
        "out_of_memory",
    )
    assert results["fine"].state is JobState.DONE
    assert {name for name, info in results.items() if info.state is JobState.FAILED} == set(runner.failures)
    assert queue.worker_alive
    assert "ZeroDivisionError" in caplog.text  # the bug's traceback is in the log
    assert history.get_job(results["user"].id).error.message == "width 40 is not a multiple of 16"


def test_a_result_that_cannot_be_recorded_fails_the_job_and_leaves_no_file(
    make_queue, tmp_path, history
) -> None:
    # The handler writes outside the history's outputs folder: the history refuses to record it.
    elsewhere = tmp_path / "elsewhere"
    queue = make_queue(ScriptedRunner(elsewhere, steps=1))
    events = Recorder()
    queue.subscribe(None, events)
    final = queue.wait(queue.submit(request("astray")).id, WAIT)
    assert final.state is JobState.FAILED and final.images == ()
    assert final.error.message == GENERIC_FAILURE
    assert events.types(final.id)[-1] == "failed"
    assert list(elsewhere.iterdir()) == []  # the unrecorded file is gone
    assert history.get_job(final.id).state is JobState.FAILED
    assert history.list_images().total == 0
    assert queue.wait(queue.submit(request("next")).id, WAIT).state is JobState.FAILED  # still serving


def test_stop_cancels_waiting_and_running_jobs_and_refuses_new_ones(history, outputs) -> None:
    runner = ScriptedRunner(outputs, steps=100, paused=True)
    queue = JobQueue(runner, max_queue=4, recorder=HistoryRecorder(history))
    queue.start()
    running = queue.submit(request("a"))
    assert runner.entered.wait(WAIT)
    waiting = queue.submit(request("b"))
    stopper = threading.Thread(target=queue.stop, kwargs={"timeout": WAIT})
    stopper.start()
    assert queue.wait(waiting.id, WAIT).error.message == STOPPED_BEFORE_RUN
    runner.release.set()
    stopper.join(WAIT)
    assert not queue.worker_alive
    assert queue.wait(running.id, WAIT).state is JobState.CANCELLED
    assert history.get_job(waiting.id).state is JobState.CANCELLED
    with pytest.raises(ServiceStopping):
        queue.submit(request("c"))


def test_finished_jobs_are_forgotten_past_the_limit_but_stay_in_history(make_queue, outputs, history) -> None:
    queue = make_queue(ScriptedRunner(outputs, steps=1), keep_finished=1)
    old = queue.wait(queue.submit(request("old")).id, WAIT)
    new = queue.wait(queue.submit(request("new")).id, WAIT)
    assert queue.get(old.id) is None
    assert queue.get(new.id) is not None
    assert history.get_job(old.id).state is JobState.DONE
    assert [info.id for info in queue.jobs()] == [new.id]


def test_late_subscriber_gets_the_end_and_unknown_jobs_raise(make_queue, outputs) -> None:
    queue = make_queue(ScriptedRunner(outputs, steps=1))
    job = queue.wait(queue.submit(request()).id, WAIT)
    seen = Recorder()
    queue.subscribe(job.id, seen)
    assert seen.types(job.id) == ["done"]
    with pytest.raises(KeyError):
        queue.subscribe("unknown", seen)


def test_broken_subscriber_is_dropped_and_others_still_hear(make_queue, outputs) -> None:
    queue = make_queue(ScriptedRunner(outputs, steps=2))

    def broken(event) -> None:
        raise RuntimeError("subscriber bug")

    good = Recorder()
    queue.subscribe(None, broken)
    queue.subscribe(None, good)
    job = queue.wait(queue.submit(request()).id, WAIT)
    assert job.state is JobState.DONE
    assert good.types(job.id)[-1] == "done"


def test_previews_ride_on_step_events_and_a_broken_one_is_harmless(history, outputs) -> None:
    def preview(step: StepProgress) -> str:
        if step.step == 2:
            raise ValueError("preview bug")
        return f"preview of step {step.step}"

    queue = JobQueue(
        ScriptedRunner(outputs, steps=3), max_queue=2, recorder=HistoryRecorder(history), preview=preview
    )
    previews = []
    queue.subscribe(None, lambda event: previews.append(event.preview) if event.type == "step" else None)
    queue.start()
    try:
        assert queue.wait(queue.submit(request()).id, WAIT).state is JobState.DONE
    finally:
        queue.stop(WAIT)
    assert previews == ["preview of step 1", None, "preview of step 3"]


def test_asyncio_consumers_get_events_and_results(make_queue, outputs) -> None:
    # Paused until the consumer is subscribed: otherwise a busy machine can run the whole job between
    # submit() and the subscription, and the consumer sees only the terminal event.
    runner = ScriptedRunner(outputs, steps=3, paused=True)
    queue = make_queue(runner)

    async def scenario() -> tuple[list[str], JobState]:
        job = queue.submit(request())
        types = []
        async with job_events(queue, job.id) as events:
            runner.release.set()
            while True:
                event = await asyncio.wait_for(events.get(), WAIT)
                types.append(event.type)
                if event.terminal:
                    break
        final = await wait_for_job(queue, job.id, timeout_s=WAIT)
        return types, final.state

    types, state = asyncio.run(scenario())
    assert types[-1] == "done"
    assert types.count("step") == 3  # every step, in order, reaches the asyncio consumer
    assert state is JobState.DONE


def test_wait_for_job_timeout_and_disconnect_cancel_the_job(make_queue, outputs) -> None:
    runner = ScriptedRunner(outputs, steps=1, paused=True)
    queue = make_queue(runner)

    async def gone() -> bool:
        return True

    async def scenario() -> None:
        slow = queue.submit(request("slow"))
        with pytest.raises(JobTimedOut, match="request_timeout_s"):
            await wait_for_job(queue, slow.id, timeout_s=0.2)
        abandoned = queue.submit(request("abandoned"))
        with pytest.raises(ClientDisconnected):
            await wait_for_job(queue, abandoned.id, timeout_s=WAIT, is_disconnected=gone, check_every_s=0.05)
        assert queue.get(abandoned.id).state is JobState.CANCELLED  # was waiting: cancelled at once
        runner.release.set()
        assert (await wait_for_job(queue, slow.id, timeout_s=WAIT)).state is JobState.CANCELLED

    asyncio.run(scenario())


def test_real_studio_job_on_the_tiny_model(settings) -> None:
    from imagestudio.services import Services

    services = Services.create(settings)
    services.start()
    try:
        events = Recorder()
        job = services.queue.submit(
            GenerateRequest.build(
                model="tiny-z-image", prompt="кот в шляпе", width=64, height=48, steps=2, seed=7
            )
        )
        services.queue.subscribe(job.id, events)
        final = services.queue.wait(job.id, 120)
        assert final.state is JobState.DONE, final.error
        [image] = final.images
        assert (image.seed, image.width, image.height) == (7, 64, 48)
        with Image.open(image.path) as png:
            assert png.size == (64, 48)
        assert events.types(job.id)[-1] == "done"
        page = services.history.list_images("КОТ")
        assert [record.id for record in page.items] == [image.id]
        assert page.items[0].metadata["steps"] == 2
    finally:
        services.close()
        services.studio.manager.unload()
