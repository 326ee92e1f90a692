"""The services object is the edges' one door to what runs where: the local studio, or the workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagestudio.cluster.cluster_queue import WorkerStatus
from imagestudio.history.store import HistoryStore
from imagestudio.services import Services


class _Cluster:
    """Answers like the cluster backend's queue: one status per live worker."""

    def __init__(self, statuses: list[WorkerStatus]) -> None:
        self._statuses = statuses

    def workers(self) -> list[WorkerStatus]:
        return list(self._statuses)


class _HeadStudio:
    """The head's studio on a cluster: asking it what is loaded would describe an idle process."""

    @property
    def manager(self) -> object:
        raise AssertionError("a cluster's status must come from its workers, not the head's studio")


def _worker(name: str, device: str, model: str | None) -> WorkerStatus:
    return WorkerStatus(
        name=name,
        host="box",
        device=device,
        gpu=None,
        models=("tiny-z-image",),
        model=model,
        job=None,
        jobs_done=0,
        last_answer_at=None,
        memory_plan=None,
    )


@pytest.fixture
def cluster_services(settings, tmp_path: Path):
    history = HistoryStore(tmp_path / "history.sqlite3", tmp_path / "outputs")
    queue = _Cluster([_worker("w0", "cuda:0", "tiny-z-image"), _worker("w1", "cpu", None)])
    services = Services(settings, _HeadStudio(), history, queue, downloads=None)  # type: ignore[arg-type]
    yield services
    history.close()


def test_on_a_cluster_the_answers_come_from_the_workers(cluster_services: Services) -> None:
    assert cluster_services.on_cluster
    assert cluster_services.device() == "cluster: cpu, cuda:0"
    assert cluster_services.is_loaded("tiny-z-image")
    assert not cluster_services.is_loaded("tiny-qwen-image-edit")
    # The head holds no model: nothing to describe or unload there.
    assert cluster_services.loaded() is None
    assert cluster_services.unload() is None
    memory = cluster_services.memory()
    assert memory.ram_total > 0 and memory.accelerator is None


def test_in_one_process_the_answers_come_from_its_studio(settings, studio) -> None:
    from imagestudio.job_requests import GenerateRequest

    services = Services.create(settings, studio=studio)
    try:
        services.start()
        assert not services.on_cluster
        assert services.device() == "cpu"
        assert services.loaded() is None and not services.is_loaded("tiny-z-image")
        request = GenerateRequest.build(model="tiny-z-image", prompt="a fox", width=64, height=64, steps=2)
        services.queue.wait(services.queue.submit(request.resolved(settings)).id, 120)
        loaded = services.loaded()
        assert loaded is not None and loaded.id == "tiny-z-image" and services.is_loaded("tiny-z-image")
        assert loaded.plan is not None and loaded.placement == "full"
        assert services.unload() == "tiny-z-image"
        assert services.loaded() is None
    finally:
        services.close()
