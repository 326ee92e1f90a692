"""Mixed cards: what a box reports (the doctor's planner on its simulated card) and how the head uses it.

No Ray: the plans come from the real planner, the queue is the real head queue, and the workers are the
in-process ones of ``test_cluster_queue`` with the plans a box would report.
"""

from __future__ import annotations

from dataclasses import replace

from imagestudio.cluster.capacity import ModelFit, UpscalerFit, box_plans, box_upscalers, model_fit
from imagestudio.hardware import GIB, probe_hardware, simulate_hardware
from imagestudio.jobs.model import JobState
from imagestudio.memory.extras import UPSCALER_FILE_DTYPE_BYTES, upscaler_bytes
from imagestudio.memory.planner import MemoryPlanner
from imagestudio.registry import UPSCALERS, get_model

# The in-process workers and the queue fixture (with its history) of the head-queue tests.
from .test_cluster_queue import WAIT, InProcessWorker, Q, Z, history, make_queue, request  # noqa: F401


def _fit(model: str, fits: bool, cost: tuple[float, int] = (0.0, 0)) -> ModelFit:
    return ModelFit(model, fits, "full, bf16 weights" if fits else "does not fit", 1.0, 1.0, cost)


def _box(name: str, *fits: ModelFit, **kwargs) -> InProcessWorker:
    worker = InProcessWorker(name, **kwargs)
    info = worker.info
    worker._info = replace(info, models=tuple(f.model for f in fits if f.fits), plans=fits)
    return worker


def test_a_box_s_plans_are_the_doctor_s_for_its_card(settings) -> None:
    big = simulate_hardware(probe_hardware("cpu", settings.models_dir), 24, 64)
    small = simulate_hardware(probe_hardware("cpu", settings.models_dir), 0.5, 64)
    on_big = {fit.model: fit for fit in box_plans(settings, big, "cpu", (Z, Q))}
    on_small = {fit.model: fit for fit in box_plans(settings, small, "cpu", (Z, Q))}
    # The same answer as the planner the doctor prints, model by model.
    for model, hardware, fits in ((Z, big, on_big), (Z, small, on_small), (Q, big, on_big)):
        plan = MemoryPlanner(settings, hardware=hardware, device="cpu").plan(get_model(model))
        assert fits[model] == model_fit(plan)
    assert on_big[Z].fits and on_big[Q].fits
    assert not on_small[Z].fits and "does not fit" in on_small[Z].plan


def test_a_model_is_never_sent_to_a_box_where_it_does_not_fit(make_queue) -> None:  # noqa: F811
    small = _box("small", _fit(Z, False), _fit(Q, True))
    big = _box("big", _fit(Z, True), _fit(Q, True))
    big.gate.clear()  # the big box is busy with its first job for a while
    queue = make_queue(small, big)
    jobs = [queue.submit(request(f"z {i}")) for i in range(3)]
    big.entered.wait(WAIT)
    assert small.ran == [] and small.loads == 0
    assert all(queue.get(job.id).state is not JobState.DONE for job in jobs)
    big.gate.set()
    assert [queue.wait(job.id, WAIT).state for job in jobs] == [JobState.DONE] * 3
    assert small.ran == [] and sorted(big.ran) == ["z 0", "z 1", "z 2"]


def test_an_idle_faster_box_gets_the_job_and_a_slower_one_is_not_starved(make_queue) -> None:  # noqa: F811
    slow = _box("slow", _fit(Z, True, (2.5, 2)))
    fast = _box("fast", _fit(Z, True, (0.0, 0)))
    fast.gate.clear()
    queue = make_queue(slow, fast)
    first = queue.submit(request("first"))
    fast.entered.wait(WAIT)
    # Both were idle: the job went to the box whose plan moves no weights per image.
    assert [w.name for w in queue.workers() if w.job == first.id] == ["fast"]
    second = queue.submit(request("second"))  # the fast box is busy now: the slow one takes it
    assert queue.wait(second.id, WAIT).state is JobState.DONE
    fast.gate.set()
    assert queue.wait(first.id, WAIT).state is JobState.DONE
    assert slow.ran == ["second"] and fast.ran == ["first"]


def test_workers_show_their_box_s_memory_and_plans(make_queue) -> None:  # noqa: F811
    box = _box("box", _fit(Z, True), _fit(Q, False))
    box._info = replace(box.info, memory={"vram_total_gb": 8.0, "simulated": True}, address="198.18.0.9")
    queue = make_queue(box)
    assert queue.wait(queue.submit(request("one")).id, WAIT).state is JobState.DONE
    (status,) = queue.workers()
    assert status.address == "198.18.0.9" and status.memory["vram_total_gb"] == 8.0
    assert [plan["fits"] for plan in status.plans] == [True, False]


def test_a_box_says_which_upscalers_it_runs_and_why_not(settings, monkeypatch) -> None:
    import sys

    cpu = probe_hardware("cpu", settings.models_dir)

    def on(hardware) -> dict[str, UpscalerFit]:
        return {fit.upscaler: fit for fit in box_upscalers(settings, hardware)}

    here = on(cpu)
    assert here["tiny-upscaler"].fits and "GB of RAM usable" in here["tiny-upscaler"].plan
    real = here["realesrgan-x4plus"]  # its file is not in this test's models folder or hub cache
    assert not real.fits and "imagestudio models download realesrgan-x4plus" in real.plan
    # On a card: the upscaler and its smallest tile count against what the plan may use (free - reserve).
    need_gb = upscaler_bytes(UPSCALERS["tiny-upscaler"], UPSCALER_FILE_DTYPE_BYTES) / GIB
    assert here["tiny-upscaler"].predicted_peak_gb == round(need_gb, 3)
    roomy = on(simulate_hardware(cpu, 8, 64))["tiny-upscaler"]
    assert roomy.fits and "GB of card memory usable" in roomy.plan
    reserve = settings.device.vram_reserve_gb
    tight = on(simulate_hardware(cpu, reserve + need_gb / 2, 64))["tiny-upscaler"]
    assert not tight.fits and tight.plan.startswith("does not fit: needs ~")
    # Without the upscale extra nothing runs, and each line names it.
    monkeypatch.setitem(sys.modules, "spandrel", None)
    missing = on(simulate_hardware(cpu, 8, 64))
    assert not any(fit.fits for fit in missing.values())
    assert all('pip install "imagestudio[upscale]"' in fit.plan for fit in missing.values())
