"""``GET /metrics``: the queue and its workers in Prometheus' text format (``prometheus-client``).

Counters that need history (jobs finished, their seconds) are fed by the queue's own events; everything
else (queue depth, jobs by state, workers, their loads and last answer) is read from the queue when
scraped, so a scrape always agrees with ``/api/system``. One registry per app (no process-global
state), behind the same API-key rules as every other route (a scraper sends ``Authorization: Bearer``).
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from imagestudio.api.errors import error_responses
from imagestudio.jobs.queue_protocol import WorkerListing

if TYPE_CHECKING:
    from imagestudio.jobs.model import JobEvent

router = APIRouter(tags=["system"])

#: Job run times from a tiny model's fraction of a second to a large edit on a small card.
JOB_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300, 600, float("inf"))


class StudioMetrics:
    """The registry of one app: event-fed counters plus a collector that reads the queue at scrape time."""

    def __init__(self, queue: Any) -> None:
        self.registry = CollectorRegistry()
        self._finished = Counter(
            "imagestudio_jobs_finished",
            "Jobs that ended since the server started, by final state and model.",
            ["state", "model"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            "imagestudio_job_seconds",
            "Seconds from a job's start to its end (successful jobs), by model.",
            ["model"],
            buckets=JOB_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_QueueCollector(queue))
        self._unsubscribe: Callable[[], None] = queue.subscribe(None, self._on_event)

    def _on_event(self, event: JobEvent) -> None:
        info = event.info
        if not event.terminal or info is None:
            return
        model = info.model or ""
        self._finished.labels(state=info.state.value, model=model).inc()
        if event.type == "done" and info.started_at is not None and info.finished_at is not None:
            self._seconds.labels(model=model).observe(max(0.0, info.finished_at - info.started_at))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        self._unsubscribe()


class _QueueCollector(Collector):
    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def collect(self) -> Iterator[Metric]:
        stats = self._queue.stats()
        depth = GaugeMetricFamily("imagestudio_queue_depth", "Jobs waiting to start.")
        depth.add_metric([], stats.queued)
        yield depth
        by_state = GaugeMetricFamily(
            "imagestudio_jobs", "Jobs the queue holds now, by state and model.", labels=["state", "model"]
        )
        tally = Tally((info.state.value, info.model or "") for info in self._queue.jobs())
        for (state, model), count in sorted(tally.items()):
            by_state.add_metric([state, model], count)
        yield by_state
        alive = GaugeMetricFamily("imagestudio_worker_alive", "1 when a job submitted now can start.")
        alive.add_metric([], 1 if stats.worker_alive else 0)
        yield alive
        if isinstance(self._queue, WorkerListing):
            yield from _worker_metrics(self._queue.workers())


def _worker_metrics(workers: list[Any]) -> Iterator[Metric]:
    labels = ["worker", "address"]
    up = GaugeMetricFamily("imagestudio_worker_up", "1 for each connected worker.", labels=labels)
    busy = GaugeMetricFamily("imagestudio_worker_busy", "1 while the worker runs a job.", labels=labels)
    silent = GaugeMetricFamily(
        "imagestudio_worker_last_answer_age_seconds",
        "Seconds since the worker's last step or result (or since it joined).",
        labels=labels,
    )
    done = CounterMetricFamily("imagestudio_worker_jobs", "Jobs the worker finished.", labels=labels)
    loads = CounterMetricFamily(
        "imagestudio_model_loads", "Model loads on each worker, by model.", labels=[*labels, "model"]
    )
    now = time.time()
    for worker in workers:
        names = [worker.name, worker.address or worker.host]
        up.add_metric(names, 1)
        busy.add_metric(names, 1 if worker.job else 0)
        if worker.last_answer_at is not None:
            silent.add_metric(names, max(0.0, now - worker.last_answer_at))
        done.add_metric(names, worker.jobs_done)
        for model, count in sorted(worker.loads.items()):
            loads.add_metric([*names, model], count)
    yield from (up, busy, silent, done, loads)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **error_responses(401)},
    summary="Prometheus metrics: queue depth, jobs by state and model, job seconds, workers, loads",
)
def metrics(request: Request) -> Response:
    studio_metrics: StudioMetrics = request.app.state.metrics
    return Response(studio_metrics.render(), media_type=CONTENT_TYPE_LATEST)
