"""Following a job from a plain thread: the queue's events in order, merged for a slow reader, and a
bounded wait that ends even when the subscription is lost.

The queue is the real in-process JobQueue; its runner is a plain callable that steps when released.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from imagestudio.engine.pipeline_calls import StepProgress
from imagestudio.errors import JobCancelled
from imagestudio.job_requests import GenerateRequest
from imagestudio.jobs.follow import EventInbox, job_events
from imagestudio.jobs.local_queue import JobQueue
from imagestudio.jobs.model import EventSink, JobEvent
from imagestudio.storage.saved_image import SavedImage, new_image_id
from imagestudio.studio import StudioResult

WAIT = 30.0
STEPS = 4


def request(prompt: str) -> GenerateRequest:
    return GenerateRequest.build(model="tiny-z-image", prompt=prompt, seed=1, width=16, height=16)


class SteppingRunner:
    """Makes ``STEPS`` steps per job, each one only once :attr:`go` is set (it stays set); a cancelled
    job stops while it waits."""

    def __init__(self, outputs: Path) -> None:
        self.outputs = outputs
        self.go = threading.Event()
        self.started = threading.Event()

    def __call__(
        self, req: GenerateRequest, on_step: Callable[[StepProgress], None], cancel: threading.Event
    ) -> StudioResult:
        self.started.set()
        deadline = time.monotonic() + WAIT
        for step in range(1, STEPS + 1):
            while not self.go.wait(0.05) and time.monotonic() < deadline:
                if cancel.is_set():
                    raise JobCancelled("cancelled")
            if cancel.is_set():
                raise JobCancelled("cancelled")
            on_step(StepProgress(1, 1, step, STEPS))
        self.outputs.mkdir(parents=True, exist_ok=True)
        path = self.outputs / f"{req.prompt}-{time.perf_counter_ns()}.png"
        Image.new("RGB", (16, 16), "red").save(path)
        image = SavedImage(new_image_id(), path, 1, 16, 16, {"prompt": req.prompt})
        return StudioResult(req.model, [image], 0.01)


class CountingQueue(JobQueue):
    """The real queue, counting the subscriptions that are open (to see that readers unsubscribe)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.open_subscriptions = 0

    def subscribe(self, job_id: str | None, sink: EventSink) -> Callable[[], None]:
        unsubscribe = super().subscribe(job_id, sink)
        self.open_subscriptions += 1

        def counted() -> None:
            self.open_subscriptions -= 1
            unsubscribe()

        return counted


def odd_step_previews(step: StepProgress) -> str | None:
    """Like the latent previewer, a preview every other step only."""
    return f"preview of step {step.step}" if step.step % 2 else None


@pytest.fixture
def runner(tmp_path: Path) -> SteppingRunner:
    return SteppingRunner(tmp_path / "outputs")


@pytest.fixture
def queue(runner: SteppingRunner) -> Iterator[CountingQueue]:
    queue = CountingQueue(runner, max_queue=4, preview=odd_step_previews)
    queue.start()
    yield queue
    queue.stop(timeout=WAIT)


def test_a_reader_gets_every_event_in_order_and_unsubscribes_at_the_end(queue, runner) -> None:
    job = queue.submit(request("in order"))
    events = job_events(queue, job.id)
    seen: list[JobEvent] = [next(events)]  # subscribed before the first step
    runner.go.set()
    for event in events:
        seen.append(event)
        time.sleep(0.05)  # a reader that is not always waiting, so events may pile up and merge
    types = [event.type for event in seen]
    assert types[0] in ("queued", "started") and types[-1] == "done"
    assert types.count("done") == 1 and "started" in types
    steps = [event.data["step"] for event in seen if event.type == "step"]
    assert steps == sorted(steps) and steps[-1] == STEPS
    assert seen[-1].info is not None and len(seen[-1].info.images) == 1
    assert queue.open_subscriptions == 0


def test_a_slow_reader_gets_the_newest_step_with_the_newest_preview(queue, runner) -> None:
    job = queue.submit(request("slow reader"))
    events = job_events(queue, job.id)
    assert next(events).type in ("queued", "started")  # subscribed now
    runner.go.set()
    queue.wait(job.id, WAIT)  # every step and the end happen while the reader reads nothing
    rest = list(events)
    step_events = [event for event in rest if event.type == "step"]
    # Four steps merged into one: the last step, carrying the preview of step 3 (step 4 had none).
    assert [(e.data["step"], e.preview) for e in step_events] == [(STEPS, "preview of step 3")]
    assert rest[-1].type == "done"
    assert queue.open_subscriptions == 0


def test_closing_the_reader_early_unsubscribes_and_leaves_the_job_running(queue, runner) -> None:
    job = queue.submit(request("left early"))
    events = job_events(queue, job.id)
    next(events)
    assert queue.open_subscriptions == 1
    events.close()
    assert queue.open_subscriptions == 0
    runner.go.set()
    assert queue.wait(job.id, WAIT).state.value == "done"


def test_stopping_the_queue_ends_a_waiting_reader_with_the_cancellation(queue, runner) -> None:
    running = queue.submit(request("running"))
    waiting = queue.submit(request("waiting"))
    assert runner.started.wait(WAIT)
    ended: list[JobEvent] = []
    reader = threading.Thread(target=lambda: ended.extend(job_events(queue, waiting.id)))
    reader.start()
    runner.go.set()
    queue.stop(timeout=WAIT)
    reader.join(WAIT)
    assert not reader.is_alive()
    assert ended[-1].type == "cancelled"
    assert queue.get(running.id) is not None


class DeafQueue(JobQueue):
    """A queue whose live events never reach this subscriber (as when a failing sink is dropped)."""

    def subscribe(self, job_id: str | None, sink: EventSink) -> Callable[[], None]:
        return super().subscribe(job_id, lambda event: None)


def test_the_bounded_wait_finds_the_end_of_a_job_whose_events_were_lost(runner) -> None:
    queue = DeafQueue(runner, max_queue=4)
    queue.start()
    try:
        runner.go.set()
        job = queue.submit(request("lost events"))
        queue.wait(job.id, WAIT)
        started = time.monotonic()
        events = list(job_events(queue, job.id, check_every_s=0.2))
        assert [event.type for event in events] == ["done"]
        assert events[0].info is not None and events[0].info.id == job.id
        assert time.monotonic() - started < 5
    finally:
        queue.stop(timeout=WAIT)


def test_unknown_jobs_are_a_key_error(queue) -> None:
    with pytest.raises(KeyError):
        next(job_events(queue, "no-such-job"))


def test_the_inbox_merges_only_waiting_steps_and_positions_of_one_job() -> None:
    inbox = EventInbox()
    for event in (
        JobEvent("a", "queued", {"position": 2}),
        JobEvent("a", "queued", {"position": 1}),
        JobEvent("a", "started"),
        JobEvent("a", "step", {"step": 1}, preview="p1"),
        JobEvent("a", "step", {"step": 2}),
        JobEvent("b", "step", {"step": 7}),
        JobEvent("a", "done"),
    ):
        inbox.put(event)
    got = []
    while (event := inbox.get(0.01)) is not None:
        got.append((event.job_id, event.type, event.data, event.preview))
    assert got == [
        ("a", "queued", {"position": 1}, None),
        ("a", "started", {}, None),
        ("a", "step", {"step": 2}, "p1"),
        ("b", "step", {"step": 7}, None),
        ("a", "done", {}, None),
    ]
    assert inbox.get(0.01) is None
