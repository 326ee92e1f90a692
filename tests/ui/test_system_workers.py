"""The System page lists the cluster's workers (cluster.backend: ray), and nothing with the local queue."""

from __future__ import annotations

from imagestudio.cluster.cluster_queue import WorkerStatus
from imagestudio.ui.common import UIContext
from imagestudio.ui.system_info import workers
from imagestudio.ui.system_page import render, workers_html
from imagestudio.ui.texts import Texts


class _Cluster:
    """Answers like the cluster backend's queue: one status per live worker."""

    def __init__(self, statuses: list[WorkerStatus]) -> None:
        self._statuses = statuses

    def workers(self) -> list[WorkerStatus]:
        return list(self._statuses)


def _status(name: str, **fields: object) -> WorkerStatus:
    values: dict[str, object] = {
        "name": name,
        "host": "box-1",
        "device": "cuda:0",
        "gpu": "RTX 4090",
        "models": ("z-image-turbo",),
        "model": "z-image-turbo",
        "job": "job-7",
        "jobs_done": 12,
        "last_answer_at": 1000.0,
        "memory_plan": "full, bf16",
    }
    values.update(fields)
    return WorkerStatus(**values)  # type: ignore[arg-type]


def _ctx() -> UIContext:
    return UIContext(backend=None, texts=Texts.load())  # type: ignore[arg-type]


def test_the_in_process_queue_has_no_workers_to_list(settings) -> None:
    from imagestudio.jobs.local_queue import JobQueue

    queue = JobQueue(lambda request, on_step, cancel: None, max_queue=2)  # type: ignore[arg-type]
    assert workers(queue) == []
    info = {"models": [], "workers": workers(queue)}
    assert "is-workers" not in render(_ctx(), info, "en")[4]


def test_each_worker_is_a_row_with_what_it_holds_and_does() -> None:
    listed = workers(_Cluster([_status("w0"), _status("w1", gpu=None, device="cpu", model=None, job=None)]))
    assert [w["name"] for w in listed] == ["w0", "w1"]
    html = workers_html(_ctx(), listed, "ru", now=1042.0)
    assert "GPU-воркеры: 2" in html
    first, second = html.split("data-worker='w0'")[1].split("data-worker='w1'")
    for value in ("box-1", "RTX 4090", "z-image-turbo", "job-7", "12", "42 с назад", "full, bf16"):
        assert value in first, value
    assert "cpu" in second and "job-7" not in second
    assert "42 s ago" in workers_html(_ctx(), listed, "en", now=1042.0)


def test_each_worker_shows_what_its_box_can_run_and_its_simulated_card() -> None:
    plans = (
        {"model": "tiny-qwen-image-edit", "fits": True, "plan": "full, bf16 weights"},
        {"model": "tiny-z-image", "fits": False, "plan": "does not fit: needs 1.1 GB of card memory"},
    )
    memory = {"name": "simulated 2.05 GB CUDA card", "simulated": True, "vram_total_gb": 2.05}
    upscalers = (
        {"upscaler": "tiny-upscaler", "fits": True, "plan": "needs ~0.01 GB (weights + smallest tile)"},
        {
            "upscaler": "realesrgan-x4plus",
            "fits": False,
            "plan": 'needs spandrel: pip install "imagestudio[upscale]"',
        },
    )
    status = _status(
        "w0", gpu=None, device="cpu", plans=plans, memory=memory, address="198.18.0.3", upscalers=upscalers
    )
    html = workers_html(_ctx(), workers(_Cluster([status])), "en", now=1042.0)
    assert "Can run" in html and "198.18.0.3" in html and "simulated 2.05 GB CUDA card" in html
    assert "✓ tiny-qwen-image-edit: full, bf16 weights" in html
    assert "✗ tiny-z-image: does not fit" in html
    # Upscale jobs go only to the boxes whose upscaler runs: the page says which.
    assert "✓ tiny-upscaler: needs ~0.01 GB" in html
    assert "✗ realesrgan-x4plus: needs spandrel: pip install &quot;imagestudio[upscale]&quot;" in html
