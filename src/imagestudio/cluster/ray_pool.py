"""The head's Ray side: one worker actor per advertised slot on every live node, and their handles.

A node offers worker slots through a Ray custom resource, :data:`SLOT` (``imagestudio worker`` sets it
to the box's GPU count; ``cluster.local_workers`` to N on this machine). The pool asks Ray which nodes are
alive (``ray.nodes()``) every ``cluster.poll_s`` and starts an actor for each free slot, pinned to its
node, with ``num_gpus=1`` where the node has GPUs (Ray then assigns the GPU). Failure detection is Ray's
own: a job's stream raises ``ActorDiedError``/``RayActorError`` when its actor's process or node dies, and
the queue re-runs the job elsewhere; the slot is refilled on the next poll if its node is still alive.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from imagestudio.cluster.cluster_queue import ClusterQueue
from imagestudio.cluster.ray_worker import CANCELLED, DONE, FAILED, STEP, StudioWorker
from imagestudio.cluster.runtime import NAMESPACE, SLOT
from imagestudio.cluster.work import JobFailed, StepSink, WorkerInfo, WorkerLost, WorkResult
from imagestudio.errors import JobCancelled

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.jobs.local_queue import PreviewMaker
    from imagestudio.jobs.model import JobRequest
    from imagestudio.jobs.recorder import JobRecorder

log = logging.getLogger(__name__)

#: How long a new actor may take to start and describe itself before the pool gives up on it for now.
JOIN_TIMEOUT_S = 300.0
#: After a worker failed to start on a node, the pool tries that node again this much later.
RETRY_AFTER_FAILED_START_S = 30.0

#: Ray's ways of saying "the worker or its node is gone" (a subset exists in each Ray version).
_LOST = tuple(
    getattr(ray.exceptions, name)
    for name in (
        "RayActorError",
        "WorkerCrashedError",
        "NodeDiedError",
        "ObjectLostError",
        "OwnerDiedError",
        "ActorUnavailableError",
    )
    if hasattr(ray.exceptions, name)
)


class RayWorker:
    """The head's handle on one worker actor (the :class:`~imagestudio.cluster.work.Worker` protocol)."""

    def __init__(self, actor: Any, info: WorkerInfo, node_id: str) -> None:
        self.actor = actor
        self.node_id = node_id
        self._info = info
        self._streams: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def info(self) -> WorkerInfo:
        return self._info

    def run(self, job_id: str, request: JobRequest, on_step: StepSink) -> WorkResult:
        stream = self.actor.run.options(num_returns="streaming").remote(job_id, request)
        with self._lock:
            self._streams[job_id] = stream
        try:
            for ref in stream:
                kind, payload = ray.get(ref)
                if kind == STEP:
                    on_step(payload)
                elif kind == DONE:
                    if not isinstance(payload, WorkResult):
                        raise TypeError(f"the worker's result is a {type(payload).__name__}")
                    return payload
                elif kind == FAILED:
                    raise JobFailed(payload)
                elif kind == CANCELLED:
                    raise JobCancelled("cancelled")
        except ray.exceptions.TaskCancelledError as exc:
            raise JobCancelled("cancelled") from exc
        except _LOST as exc:
            raise WorkerLost(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        finally:
            with self._lock:
                self._streams.pop(job_id, None)
        # The stream ended without its last item: only a dead actor does that.
        raise WorkerLost("the job's stream ended without a result")

    def cancel(self, job_id: str) -> None:
        with self._lock:
            stream = self._streams.get(job_id)
        if stream is not None:
            ray.cancel(stream)

    def close(self) -> None:
        try:
            ray.kill(self.actor, no_restart=True)
        except Exception:
            log.debug("worker %s was already gone", self._info.name, exc_info=True)


class RayWorkerPool:
    """Keeps one actor per free slot on every live node, and hands new ones to the queue."""

    def __init__(self, settings: Settings, queue: ClusterQueue, preview: PreviewMaker | None = None) -> None:
        self._settings = settings
        self._queue = queue
        self._preview = preview
        self._poll_s = settings.cluster.poll_s
        self._lock = threading.Lock()
        self._by_node: dict[str, set[str]] = {}
        self._names = itertools.count(1)
        self._retry_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="imagestudio-ray-pool", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # A poll may be waiting for an actor to start; the thread is a daemon, so don't wait long.
            self._thread.join(5.0)

    def forget(self, worker: RayWorker) -> None:
        """A worker was lost: free its slot, so the next poll starts a new one if the node is alive."""
        with self._lock:
            self._by_node.get(worker.node_id, set()).discard(worker.info.name)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.fill()
            except Exception:
                log.warning("could not look for Ray workers", exc_info=True)
            self._stop.wait(self._poll_s)

    def fill(self) -> int:
        """Start actors for the free slots of every live node; returns how many joined."""
        pending = []
        # ray.nodes() is unannotated; this is the shape Ray documents for it.
        live_nodes: Callable[[], list[dict[str, Any]]] = ray.nodes
        for node in live_nodes():
            if not node.get("Alive"):
                continue
            resources = node.get("Resources", {})
            slots = int(resources.get(SLOT, 0))
            node_id = node["NodeID"]
            if time.monotonic() < self._retry_at.get(node_id, 0.0):
                continue
            with self._lock:
                have = self._by_node.setdefault(node_id, set())
                missing = slots - len(have)
                for _ in range(max(0, missing)):
                    name = f"worker-{next(self._names)}@{node.get('NodeManagerHostname') or node_id[:8]}"
                    have.add(name)
                    pending.append((name, node_id, resources.get("GPU", 0) >= 1))
        joined = 0
        for name, node_id, gpu in pending:
            if self._stop.is_set():
                break
            if self._start_actor(name, node_id, gpu):
                joined += 1
            else:
                self._retry_at[node_id] = time.monotonic() + RETRY_AFTER_FAILED_START_S
                with self._lock:
                    self._by_node.get(node_id, set()).discard(name)
        return joined

    def _start_actor(self, name: str, node_id: str, gpu: bool) -> bool:
        # Ray's annotations cannot follow ray.remote over a class (they see a function or the class
        # itself), so the actor class is handled untyped; what it returns is checked below.
        remote: Any = ray.remote(StudioWorker).options(
            num_cpus=0,
            num_gpus=1 if gpu else 0,
            resources={SLOT: 1},
            # describe/stats may be asked while a job streams; jobs themselves are serialized.
            max_concurrency=4,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            name=f"imagestudio-{name}",
            namespace=NAMESPACE,
        )
        settings = self._settings.model_dump(mode="json", exclude={"server", "cluster"})
        actor = remote.remote(name, settings, self._preview)
        try:
            info = ray.get(actor.describe.remote(), timeout=JOIN_TIMEOUT_S)
            if not isinstance(info, WorkerInfo):
                raise TypeError(f"the worker described itself as {type(info).__name__}")
        except Exception as exc:  # noqa: BLE001 - any reason: the slot is retried on the next poll
            log.warning("worker %s did not start: %s", name, exc)
            ray.kill(actor, no_restart=True)
            return False
        self._queue.add_worker(RayWorker(actor, info, node_id))
        return True


class RayClusterQueue(ClusterQueue):
    """The cluster queue plus its Ray runtime and worker pool, started and stopped with it."""

    def __init__(
        self,
        settings: Settings,
        *,
        recorder: JobRecorder | None,
        preview: PreviewMaker | None = None,
        start_runtime: bool = True,
    ) -> None:
        from imagestudio.jobs.limits import SubmitLimits

        cluster = settings.cluster
        super().__init__(
            outputs_dir=settings.outputs_dir,
            max_queue=settings.server.max_queue,
            recorder=recorder,
            keep_finished=settings.server.keep_finished_jobs,
            limits=SubmitLimits.from_settings(settings),
            worker_wait_s=cluster.worker_wait_s,
            max_attempts=cluster.max_attempts,
            on_worker_lost=self._forget,
        )
        self._settings = settings
        self._start_runtime = start_runtime
        self.pool = RayWorkerPool(settings, self, preview)

    def _forget(self, worker: Any) -> None:
        if isinstance(worker, RayWorker):
            self.pool.forget(worker)

    def start(self) -> None:
        if self._start_runtime:
            from imagestudio.cluster.runtime import connect

            connect(self._settings.cluster)
        super().start()
        self.pool.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self.pool.stop()
        super().stop(timeout)
        if self._start_runtime:
            from imagestudio.cluster.runtime import disconnect

            disconnect()
