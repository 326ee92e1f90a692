"""The long-lived services one server process shares: studio, job queue, history.

Built by :meth:`Services.create` (opens the history, builds the queue; starts no thread), started by
:meth:`Services.start`, stopped by :meth:`Services.close`. The HTTP API and the web UI reach them
through ``app.state.services``; neither holds state of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.history.store import HistoryStore
    from imagestudio.jobs.local_queue import JobHandler, PreviewMaker
    from imagestudio.jobs.queue_protocol import JobBackend
    from imagestudio.models.background import BackgroundDownloads
    from imagestudio.studio import Studio

log = logging.getLogger(__name__)


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

    def close(self, timeout: float = 30.0) -> None:
        """Stop the queue (cancelling what is left), then close the history."""
        self.queue.stop(timeout)
        self.history.close()
