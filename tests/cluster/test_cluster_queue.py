"""The cluster backend's head-side queue, with in-process workers: no Ray, so it runs in the default suite.

The workers here stand in for remote GPUs only in where they run; the queue under test is the real one,
with a real SQLite history and real files. A worker "loads" a model when asked for one it does not hold,
and can be made to die mid-job (what a kill -9 or a lost box looks like to the head).
"""

from __future__ import annotations

import io
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagestudio.cluster.capacity import UpscalerFit
from imagestudio.cluster.cluster_queue import ClusterQueue
from imagestudio.cluster.scheduling import pick_job
from imagestudio.cluster.work import JobFailed, OutputImage, StepReport, WorkerInfo, WorkerLost, WorkResult
from imagestudio.errors import InvalidRequest, JobCancelled, QueueFull
from imagestudio.history.recorder import HistoryRecorder
from imagestudio.history.store import HistoryStore
from imagestudio.job_requests import EditRequest, GenerateRequest, UpscaleRequest
from imagestudio.jobs.limits import SubmitLimits
from imagestudio.jobs.model import JobError, JobState
from imagestudio.storage.inputs import InputLimits, read_input_image
from imagestudio.storage.kept_inputs import INPUTS_DIR

from ..faults.disks import fill, tmpfs
from ..helpers import python_output, wait_until

WAIT = 30.0
Z, Q = "tiny-z-image", "tiny-qwen-image-edit"


def request(prompt: str = "кот", model: str = Z) -> Any:
    """A request-shaped object; the queue only reads ``model``, ``prompt`` and the metadata fields."""
    if model == Z:
        return GenerateRequest.build(model=Z, prompt=prompt, seed=5, width=16, height=16)
    return _Stub(model, prompt)


class _Stub:
    """An edit job as the queue sees it (the workers here never run a pipeline)."""

    def __init__(self, model: str, prompt: str) -> None:
        self.model, self.prompt, self.seed, self.count = model, prompt, 1, 1

    def metadata_fields(self) -> dict[str, Any]:
        return {"model": self.model, "prompt": self.prompt}


def png(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, "PNG")
    return buffer.getvalue()


def noise_png(seed: int) -> bytes:
    """A 32x32 picture of noise: ~3 KiB that PNG cannot shrink, so each file fills one 4 KiB page."""
    pixels = random.Random(seed).randbytes(32 * 32 * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (32, 32), pixels).save(buffer, "PNG")
    return buffer.getvalue()


class InProcessWorker:
    """Holds one model; a job for another model costs a load. Can pause, be cancelled, or die."""

    def __init__(
        self,
        name: str,
        models: tuple[str, ...] = (Z, Q),
        steps: int = 3,
        step_s: float = 0.01,
        upscalers: tuple[UpscalerFit, ...] = (),
    ) -> None:
        self._info = WorkerInfo(
            name=name, host="box", device="cpu", gpu=None, models=models, upscalers=upscalers
        )
        self.steps, self.step_s = steps, step_s
        self.resident: str | None = None
        self.loads = 0
        self.ran: list[str] = []
        self.cancelled: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.die_in: str | None = None  # a prompt: die when running it
        #: Shared by workers that must start each job together (jobs of equal length on any load).
        self.start_together: threading.Barrier | None = None
        self.closed = False
        #: The PNGs each job returns (one small red picture unless set).
        self.pngs = [png()]

    @property
    def info(self) -> WorkerInfo:
        return self._info

    def run(self, job_id: str, request: Any, on_step) -> WorkResult:
        # As a real worker: an upscaler runs beside the resident model, which stays.
        if not isinstance(request, UpscaleRequest) and request.model != self.resident:
            self.resident, self.loads = request.model, self.loads + 1
        if self.start_together is not None:
            self.start_together.wait(WAIT)
        self.entered.set()
        for step in range(1, self.steps + 1):
            self.gate.wait(WAIT)
            if request.prompt == self.die_in:
                raise WorkerLost("killed")
            if job_id in self.cancelled:
                raise JobCancelled("cancelled")
            time.sleep(self.step_s)
            on_step(StepReport(1, 1, step, self.steps, preview=f"preview {step}"))
        if request.prompt == "fail":
            raise JobFailed(JobError("bad prompt", "invalid_request_error", 400, code="bad"))
        self.ran.append(request.prompt)
        meta = {"prompt": request.prompt, "worker": self._info.name}
        images = tuple(
            OutputImage(data, f"out-{request.prompt}-{index}", 5 + index, 16, 16, meta)
            for index, data in enumerate(self.pngs)
        )
        return WorkResult(request.model, images, 0.01, {"memory": {"plan": "full"}})

    def cancel(self, job_id: str) -> None:
        self.cancelled.add(job_id)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def history(tmp_path: Path):
    store = HistoryStore(tmp_path / "history.sqlite3", tmp_path / "outputs")
    yield store
    store.close()


@pytest.fixture
def make_queue(tmp_path: Path, history: HistoryStore):
    queues: list[ClusterQueue] = []

    def make(*workers: InProcessWorker, start: bool = True, **options: Any) -> ClusterQueue:
        options.setdefault("max_queue", 50)
        recorder = HistoryRecorder(history)
        queue = ClusterQueue(outputs_dir=tmp_path / "outputs", recorder=recorder, **options)
        for worker in workers:
            queue.add_worker(worker)
        if start:
            queue.start()
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        queue.stop(10)


# ----------------------------------------------------------------- the affinity rule


def test_pick_prefers_the_held_model_then_an_unheld_one_then_the_oldest() -> None:
    jobs = [("a", Z), ("b", Q), ("c", Z)]
    model_of = lambda job: job[1]  # noqa: E731
    assert pick_job(jobs, model_of=model_of, held=Q, held_by_others={Z}) == ("b", Q)
    # holds nothing; z is held by another worker, so the oldest job for the unheld model
    assert pick_job(jobs, model_of=model_of, held=None, held_by_others={Z}) == ("b", Q)
    # every model is held by someone else: the oldest job, and this worker switches
    assert pick_job(jobs, model_of=model_of, held=None, held_by_others={Z, Q}) == ("a", Z)
    # never a job it cannot hold
    assert pick_job(jobs, model_of=model_of, held=None, held_by_others=(), can_hold=lambda m: m == Q) == (
        "b",
        Q,
    )
    # a job whose model an idle worker holds is left to that worker, even with nothing else to do
    assert (
        pick_job([("d", Z)], model_of=model_of, held=Q, held_by_others={Z}, held_by_idle_others={Z}) is None
    )
    assert pick_job([], model_of=model_of, held=Z, held_by_others=()) is None


def test_twelve_alternating_jobs_on_two_workers_load_each_model_once(make_queue, history) -> None:
    """A burst of twelve, z and q alternating, on two workers whose jobs take equally long.

    Equal length is enforced, not hoped for: the workers start each job together. Otherwise a busy
    machine can stall one worker's thread long enough for the other to finish its model's jobs and,
    by rule 3 (switch rather than stay idle), take the stalled one's last waiting job: a third load
    that is the rule working, not a fault.
    """
    first, second = InProcessWorker("w1"), InProcessWorker("w2")
    first.start_together = second.start_together = threading.Barrier(2)
    queue = make_queue(first, second, start=False)
    jobs = [queue.submit(request(f"job {i}", Z if i % 2 == 0 else Q)) for i in range(12)]
    queue.start()
    finals = [queue.wait(job.id, WAIT) for job in jobs]

    assert [info.state for info in finals] == [JobState.DONE] * 12
    assert first.loads + second.loads == 2
    assert {first.resident, second.resident} == {Z, Q}
    assert len(history.list_images(limit=100).items) == 12
    assert all(Path(info.images[0].path).is_file() for info in finals)


def test_jobs_arriving_alternately_on_idle_workers_never_switch_models(make_queue) -> None:
    first, second = InProcessWorker("w1"), InProcessWorker("w2")
    queue = make_queue(first, second)
    for pair in range(6):
        jobs = [queue.submit(request(f"z {pair}", Z)), queue.submit(request(f"q {pair}", Q))]
        assert all(queue.wait(job.id, WAIT).state is JobState.DONE for job in jobs)
    assert first.loads + second.loads == 2


def test_a_job_left_to_an_idle_holder_goes_to_another_worker_once_the_holder_is_busy(make_queue) -> None:
    holder, other = InProcessWorker("holder"), InProcessWorker("other")
    queue = make_queue(holder, other)
    assert queue.wait(queue.submit(request("warm up", Z)).id, WAIT).state is JobState.DONE
    holder.gate.clear()
    other.gate.clear()
    jobs = [queue.submit(request(f"z {i}", Z)) for i in range(2)]
    wait_until(
        lambda: all(queue.get(job.id).state is JobState.RUNNING for job in jobs),
        WAIT,
        "both workers to be running a job",
        every=0.01,
    )
    holder.gate.set()
    other.gate.set()


def test_a_job_whose_worker_dies_runs_once_more_on_another_and_is_recorded_once(make_queue, history) -> None:
    doomed, spare = InProcessWorker("doomed"), InProcessWorker("spare")
    doomed.die_in = "unlucky"
    lost: list[str] = []
    queue = make_queue(doomed, on_worker_lost=lambda worker: lost.append(worker.info.name))
    events: list[str] = []
    # Subscribed before the job exists: the doomed worker may start it before submit() returns.
    queue.subscribe(None, lambda event: events.append(event.type))
    job = queue.submit(request("unlucky"))
    # With only the doomed worker, the job goes back to the queue and waits for a live one.
    wait_until(lambda: lost, WAIT, "the doomed worker to be lost", every=0.01)
    assert lost == ["doomed"] and doomed.closed
    assert queue.get(job.id).state is JobState.QUEUED
    assert queue.workers() == []

    queue.add_worker(spare)
    final = queue.wait(job.id, WAIT)
    assert final.state is JobState.DONE
    assert spare.ran == ["unlucky"] and doomed.ran == []
    assert events.count("done") == 1 and events.count("started") == 2
    assert len(history.list_images(limit=10).items) == 1
    assert history.get_job(job.id).state is JobState.DONE
    assert history.job_details(job.id)["timings"]["attempts"] == 2


def test_a_lost_job_goes_to_the_front_of_the_queue(make_queue) -> None:
    doomed = InProcessWorker("doomed")
    doomed.gate.clear()
    doomed.die_in = "first"
    queue = make_queue(doomed)
    first = queue.submit(request("first"))
    assert doomed.entered.wait(WAIT)
    second = queue.submit(request("second"))
    doomed.gate.set()
    wait_until(
        lambda: queue.get(first.id).state is JobState.QUEUED,
        WAIT,
        "the lost job back in the queue",
        every=0.01,
    )
    assert queue.get(first.id).queue_position == 1
    assert queue.get(second.id).queue_position == 2


def test_a_job_that_kills_every_worker_fails_after_max_attempts(make_queue) -> None:
    workers = [InProcessWorker(f"w{i}") for i in range(3)]
    for worker in workers:
        worker.die_in = "poison"
    queue = make_queue(*workers, max_attempts=2)
    final = queue.wait(queue.submit(request("poison")).id, WAIT)
    assert final.state is JobState.FAILED
    assert "died 2 times" in final.error.message


def test_cancel_stops_a_running_job_and_the_worker_keeps_its_model(make_queue, history) -> None:
    worker = InProcessWorker("w1")
    worker.gate.clear()
    queue = make_queue(worker)
    job = queue.submit(request("long"))
    assert worker.entered.wait(WAIT)
    queue.cancel(job.id)
    worker.gate.set()
    final = queue.wait(job.id, WAIT)
    assert final.state is JobState.CANCELLED
    assert history.get_job(job.id).state is JobState.CANCELLED
    after = queue.wait(queue.submit(request("next")).id, WAIT)
    assert after.state is JobState.DONE and worker.loads == 1


def test_a_failed_job_keeps_its_reason(make_queue) -> None:
    queue = make_queue(InProcessWorker("w1"))
    final = queue.wait(queue.submit(request("fail")).id, WAIT)
    assert final.state is JobState.FAILED
    assert final.error.message == "bad prompt" and final.error.http_status == 400


def test_a_model_no_worker_holds_fails_with_the_reason_instead_of_waiting(make_queue) -> None:
    only_z = InProcessWorker("w1", models=(Z,))
    queue = make_queue(only_z, worker_wait_s=0.2)
    final = queue.wait(queue.submit(request("edit me", Q)).id, WAIT)
    assert final.state is JobState.FAILED
    assert f"no worker can run {Q}" in final.error.message
    assert final.error.code == "no_worker_for_model" and final.error.details == {"model": Q}
    assert queue.wait(queue.submit(request("fine", Z)).id, WAIT).state is JobState.DONE


def test_without_workers_a_job_fails_after_the_wait(make_queue) -> None:
    queue = make_queue(worker_wait_s=0.2)
    final = queue.wait(queue.submit(request("anyone?")).id, WAIT)
    assert final.state is JobState.FAILED
    assert "no worker is connected" in final.error.message
    assert not queue.worker_alive


def test_max_queue_bounds_the_jobs_waiting_across_workers(make_queue) -> None:
    worker = InProcessWorker("w1")
    worker.gate.clear()
    queue = make_queue(worker, max_queue=2)
    queue.submit(request("running"))
    assert worker.entered.wait(WAIT)
    queue.submit(request("one"))
    queue.submit(request("two"))
    with pytest.raises(QueueFull) as refused:
        queue.submit(request("three"))
    assert refused.value.retry_after_s >= 1
    worker.gate.set()


def test_steps_and_previews_reach_subscribers(make_queue) -> None:
    worker = InProcessWorker("w1")
    worker.gate.clear()
    queue = make_queue(worker)
    job = queue.submit(request("watched"))
    seen: list[tuple[str, Any]] = []
    done = threading.Event()

    def sink(event) -> None:
        seen.append((event.type, event.preview))
        if event.terminal:
            done.set()

    queue.subscribe(job.id, sink)
    worker.gate.set()
    assert done.wait(WAIT)
    steps = [preview for kind, preview in seen if kind == "step"]
    assert steps == ["preview 1", "preview 2", "preview 3"]
    status = queue.workers()[0]
    assert status.model == Z and status.jobs_done == 1 and status.memory_plan == "full"


def test_each_client_gets_its_share_of_the_queue_and_requests_are_held_to_the_limits(make_queue) -> None:
    worker = InProcessWorker("w1")
    worker.gate.clear()
    limits = SubmitLimits(max_prompt_chars=20, max_images=2, max_queued_per_client=2)
    queue = make_queue(worker, max_queue=10, limits=limits)
    mine = [queue.submit(request(f"mine {i}"), client="10.0.0.7") for i in range(2)]
    with pytest.raises(QueueFull) as refused:
        queue.submit(request("one more"), client="10.0.0.7")
    assert refused.value.code == "client_queue_full" and refused.value.http_status == 429
    assert refused.value.retry_after_s >= 1
    assert queue.submit(request("theirs"), client="10.0.0.8").state is JobState.QUEUED

    with pytest.raises(InvalidRequest) as long_prompt:
        queue.submit(request("x" * 21), client="10.0.0.9")
    assert (long_prompt.value.param, long_prompt.value.code) == ("prompt", "field_too_long")
    too_many = GenerateRequest.build(model=Z, prompt="cats", seed=5, width=16, height=16, count=3)
    with pytest.raises(InvalidRequest) as count:
        queue.submit(too_many, client="10.0.0.9")
    assert (count.value.param, count.value.code) == ("n", "field_max")

    worker.gate.set()
    assert queue.wait(mine[0].id, WAIT).state is JobState.DONE
    # a finished job frees its client's place
    assert queue.submit(request("again"), client="10.0.0.7").state in (JobState.QUEUED, JobState.RUNNING)


def test_an_edit_run_on_a_worker_keeps_its_input_pictures_for_history(make_queue, history) -> None:
    picture = read_input_image(png("blue"), InputLimits(10_000_000, 10_000_000), name="blue.png")
    edit = EditRequest.build(model=Q, prompt="make it red", seed=1, images=[picture])
    queue = make_queue(InProcessWorker("w1"))
    final = queue.wait(queue.submit(edit).id, WAIT)
    assert final.state is JobState.DONE
    kept = history.input_file(picture.sha256)
    assert kept is not None and kept.parent.name == INPUTS_DIR
    with Image.open(kept) as image:
        assert image.getpixel((0, 0)) == (0, 0, 255)
    assert history.get_job(final.id).kind == "edit"


def test_a_full_disk_fails_the_job_with_507_and_leaves_no_file(tmp_path: Path, history) -> None:
    with tmpfs(tmp_path / "disk", size_kb=64) as disk:
        outputs = disk / "outputs"
        outputs.mkdir()
        store = HistoryStore(tmp_path / "disk-history.sqlite3", outputs)
        worker = InProcessWorker("w1")
        worker.pngs = [noise_png(1), noise_png(2)]
        queue = ClusterQueue(outputs_dir=outputs, max_queue=4, recorder=HistoryRecorder(store))
        queue.add_worker(worker)
        queue.start()
        try:
            filler = fill(disk)
            os.truncate(filler, filler.stat().st_size - 4096)  # room for the first image, not the second
            failed = queue.wait(queue.submit(request("too big")).id, WAIT)
            assert failed.state is JobState.FAILED
            error = failed.error
            assert (error.http_status, error.type, error.code) == (
                507,
                "insufficient_storage",
                "storage_full",
            )
            assert str(outputs) in error.message and error.details == {"folder": str(outputs)}
            assert list(outputs.iterdir()) == []  # neither the first image nor a temporary file
            assert store.get_job(failed.id).state is JobState.FAILED
            assert store.list_images().total == 0

            filler.unlink()
            done = queue.wait(queue.submit(request("fits")).id, WAIT)
            assert done.state is JobState.DONE and len(done.images) == 2
            assert sorted(p.name for p in outputs.iterdir()) == sorted(i.path.name for i in done.images)
            assert store.list_images().total == 2
            assert queue.worker_alive and queue.workers()[0].jobs_done == 2
        finally:
            queue.stop(10)
            store.close()


def test_the_single_pc_server_never_imports_ray_or_the_cluster_package(config_file: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from imagestudio.config import load_settings\n"
        "from imagestudio.api.app import create_app\n"
        f"app = create_app(load_settings(Path({str(config_file)!r})))\n"
        "assert type(app.state.services.queue).__name__ == 'JobQueue'\n"
        "names = ('ray', 'ray.', 'imagestudio.cluster')\n"
        "print(sorted(m for m in sys.modules if m.startswith(names)))\n"
    )
    assert python_output(code) == "[]"


def upscale_request(upscaler: str = "tiny-upscaler") -> UpscaleRequest:
    picture = read_input_image(png(), InputLimits(max_bytes=10**6, max_pixels=10**6), name="a.png")
    return UpscaleRequest.build(images=(picture,), upscaler=upscaler, prompt=f"up {upscaler}")


def hires_request(prompt: str = "hires") -> GenerateRequest:
    return GenerateRequest.build(
        model=Z, prompt=prompt, width=16, height=16, hires_scale=2.0, hires_upscaler="tiny-upscaler"
    )


TINY_UPSCALER = (UpscalerFit("tiny-upscaler", True, "needs ~0.03 GB (weights + smallest tile)"),)


def test_an_upscale_goes_to_a_worker_with_its_upscaler_and_keeps_that_worker_s_model(
    make_queue, history
) -> None:
    able = InProcessWorker("able", upscalers=TINY_UPSCALER)
    queue = make_queue(able)
    assert queue.wait(queue.submit(request("first")).id, WAIT).state is JobState.DONE
    queue.add_worker(InProcessWorker("plain"))  # no upscaler: never given an upscale or a hires pass
    jobs = [*(queue.submit(upscale_request()) for _ in range(3)), queue.submit(hires_request())]
    finals = [queue.wait(job.id, WAIT) for job in jobs]
    assert [info.state for info in finals] == [JobState.DONE] * 4, [info.error for info in finals]
    assert able.ran == ["first", *["up tiny-upscaler"] * 3, "hires"]
    # The upscaler ran beside the held model: no load, and the head still sees the model held.
    assert able.resident == Z and able.loads == 1
    statuses = {status.name: status for status in queue.workers()}
    assert statuses["able"].model == Z
    assert statuses["able"].upscalers == tuple(fit.as_dict() for fit in TINY_UPSCALER)
    job = history.get_job(jobs[0].id)
    assert job.kind == "upscale" and job.state is JobState.DONE and len(job.images) == 1


def test_an_upscale_no_worker_can_run_fails_in_one_line_naming_the_extra(
    make_queue, history, settings, monkeypatch
) -> None:
    import sys

    from imagestudio.cluster.capacity import box_upscalers
    from imagestudio.hardware import probe_hardware

    # How a box whose Python lacks spandrel describes itself (its import fails as if not installed).
    monkeypatch.setitem(sys.modules, "spandrel", None)
    without_extra = box_upscalers(settings, probe_hardware("cpu", settings.models_dir))
    queue = make_queue(
        InProcessWorker("w1", upscalers=without_extra),
        InProcessWorker("w2", upscalers=without_extra),
        worker_wait_s=0.2,
    )
    finals = [queue.wait(queue.submit(job).id, WAIT) for job in (upscale_request(), hires_request())]
    for final in finals:
        assert final.state is JobState.FAILED
        assert final.error.code == "no_worker_for_upscaler"
        message = final.error.message
        assert message.startswith("no connected worker can run upscaler tiny-upscaler: upscaling needs")
        assert 'pip install "imagestudio[upscale]"' in message and "\n" not in message
        assert message.count("pip install") == 1  # the two boxes' one reason, said once
    assert history.get_job(finals[0].id).state is JobState.FAILED
    # The workers go on serving what they can.
    assert queue.wait(queue.submit(request("fine")).id, WAIT).state is JobState.DONE
