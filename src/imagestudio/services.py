"""The long-lived services one server process shares: studio, job queue, history.

Built by :meth:`Services.create` (opens the history, builds the queue; starts no thread), started by
:meth:`Services.start`, stopped by :meth:`Services.close`. The HTTP API and the web UI reach them
through ``app.state.services``; neither holds state of its own.

The edges ask this object, never the studio's model manager, what runs where: :meth:`Services.device`,
:meth:`Services.loaded`, :meth:`Services.is_loaded`, :meth:`Services.unload`, :meth:`Services.memory`.
With the cluster's queue the models live on the workers, so the answers come from them, not from the
head's idle studio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagestudio.jobs.queue_protocol import WorkerListing

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from imagestudio.config import Settings
    from imagestudio.hardware import MemoryNow
    from imagestudio.history.store import HistoryStore
    from imagestudio.jobs.local_queue import JobHandler, PreviewMaker
    from imagestudio.jobs.queue_protocol import JobBackend
    from imagestudio.memory.plan import MemoryPlan
    from imagestudio.models.background import BackgroundDownloads
    from imagestudio.studio import Studio

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModelStatus:
    """The model this process holds, as status reports show it."""

    id: str
    device: str
    placement: str
    dtype: str
    load_seconds: float
    #: The memory plan it was loaded with (None when it was loaded without one).
    plan: MemoryPlan | None


@dataclass
class Services:
    settings: Settings
    studio: Studio
    history: HistoryStore
    #: The in-process JobQueue, or the cluster's queue with ``cluster.backend: ray``.
    queue: JobBackend
    #: Model downloads run on their own threads, beside (never inside) the GPU worker's queue.
    downloads: BackgroundDownloads

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        studio: Studio | None = None,
        handler: JobHandler | None = None,
        preview: PreviewMaker | None = None,
        history_owner: bool = True,
    ) -> Services:
        """Open the history (failing jobs a killed server left behind) and build the queue.

        ``handler`` replaces the studio-backed job handler (tests drive the queue with plain callables);
        ``preview`` makes the previews attached to step events (the UI's live image). Either queue
        records its jobs in the history through the same recorder. ``history_owner=False`` is for a process
        that shares the history with a server that may be running (``imagestudio mcp``): it leaves the
        unfinished jobs it finds alone, since they may be that server's.
        """
        from imagestudio.history.recorder import HistoryRecorder
        from imagestudio.history.store import HistoryStore
        from imagestudio.jobs.dispatch import StudioDispatcher
        from imagestudio.jobs.limits import SubmitLimits
        from imagestudio.jobs.local_queue import JobQueue
        from imagestudio.models.background import BackgroundDownloads
        from imagestudio.storage.files import check_writable_folder, clean_stale_temp_files
        from imagestudio.studio import Studio

        # An outputs folder that cannot be written is refused now, not at the first finished job; and
        # what a killed writer left there goes before anything is listed.
        check_writable_folder(settings.outputs_dir, "storage.outputs_dir")
        clean_stale_temp_files(settings.outputs_dir)
        studio = studio or Studio(settings)
        history = HistoryStore(settings.history_db, settings.outputs_dir, owner=history_owner)
        recorder = HistoryRecorder(history)
        queue: JobBackend
        if settings.cluster.backend == "ray" and handler is None:
            # Imported only here: the single-PC path never imports Ray (tests/cluster/test_cluster_queue.py).
            from imagestudio.cluster.service import build_cluster_queue

            queue = build_cluster_queue(settings, recorder, preview)
            return cls(settings, studio, history, queue, BackgroundDownloads(settings))
        queue = JobQueue(
            handler or StudioDispatcher(studio),
            max_queue=settings.server.max_queue,
            recorder=recorder,
            keep_finished=settings.server.keep_finished_jobs,
            preview=preview,
            limits=SubmitLimits.from_settings(settings),
        )
        return cls(settings, studio, history, queue, BackgroundDownloads(settings))

    def start(self) -> None:
        self.queue.start()

    # ----------------------------------------------------------------- what runs where

    @property
    def on_cluster(self) -> bool:
        """Jobs run on the cluster's workers (``cluster.backend: ray``), not in this process."""
        return isinstance(self.queue, WorkerListing)

    def device(self) -> str:
        """Where jobs run: this process's torch device, or the workers' devices on a cluster.

        Raises :class:`~imagestudio.errors.UserError` when no device is usable here (a misconfigured
        ``device.type``).
        """
        if isinstance(self.queue, WorkerListing):
            devices = sorted({status.device for status in self.queue.workers()})
            return f"cluster: {', '.join(devices)}" if devices else "cluster: no worker connected"
        return self.studio.manager.device

    def loaded(self) -> LoadedModelStatus | None:
        """The model this process holds; None when none is, and on a cluster (its workers hold theirs)."""
        if self.on_cluster:
            return None
        resident = self.studio.manager.resident
        if resident is None:
            return None
        return LoadedModelStatus(
            id=resident.spec.id,
            device=resident.device,
            placement=resident.placement,
            dtype=resident.dtype,
            load_seconds=resident.load_seconds,
            plan=resident.plan,
        )

    def is_loaded(self, model_id: str | None) -> bool:
        """Whether a job of ``model_id`` would find its model loaded (here, or on some worker)."""
        if isinstance(self.queue, WorkerListing):
            return any(status.model == model_id for status in self.queue.workers())
        return self.studio.manager.loaded_id == model_id

    def unload(self) -> str | None:
        """Drop the loaded model and give its memory back; returns its id (None if none was loaded).

        On a cluster the head holds no model and the workers keep theirs (they switch per job).
        """
        if self.on_cluster:
            return None
        return self.studio.manager.unload()

    def memory(self) -> MemoryNow:
        """This machine's RAM and, when jobs run on its CUDA card, the card's memory."""
        from imagestudio.hardware import memory_now

        return memory_now("cpu" if self.on_cluster else self.device())

    def cached_model_hash(self, files: Sequence[Path]) -> str | None:
        """The hash of a model's weight ``files`` if it was computed already (never reads them)."""
        return self.studio.hash_cache.cached(files)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the queue (cancelling what is left), then close the history."""
        self.queue.stop(timeout)
        self.history.close()
