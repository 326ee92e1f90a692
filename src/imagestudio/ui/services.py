"""The pages' backend over the server's shared services: the job queue, the history store, the studio.

Everything here reads or calls those services; the only state of its own is a small cache of latent
previews, made on demand when a page asks for one (and at most every ``preview_interval_s``), so a job
nobody is watching costs nothing extra.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import UserError
from imagestudio.ui.backend import HistoryEntry, HistoryPage, JobImage, JobSnapshot

if TYPE_CHECKING:
    from imagestudio.jobs.model import JobError, JobInfo
    from imagestudio.services import Services
    from imagestudio.storage.history import ImageRecord

log = logging.getLogger(__name__)


class JobFailure(UserError):
    """A failed job's error as the page shows it (the queue keeps errors as plain data)."""


def job_failure(error: JobError | None) -> BaseException | None:
    if error is None:
        return None
    if error.http_status >= 500 and error.type == "server_error":
        # A bug or an environment failure: the page says so generically (the log has the details).
        return RuntimeError(error.message)
    return JobFailure(
        error.message,
        param=error.param,
        code=getattr(error, "code", None),
        details=getattr(error, "details", None),
    )


@dataclass
class _Preview:
    step: int
    version: int
    image: Any
    made_at: float


class StudioServices:
    """:class:`~imagestudio.ui.backend.StudioBackend` over a running server's :class:`Services`."""

    def __init__(self, services: Services, preview_interval_s: float = 0.5) -> None:
        self._services = services
        self._preview_interval_s = preview_interval_s
        self._previews: dict[str, _Preview] = {}
        self._lock = threading.Lock()

    @property
    def settings(self) -> Any:
        return self._services.settings

    # ----------------------------------------------------------------- jobs

    def submit(self, request: Any) -> str:
        return self._services.queue.submit(request).id

    def cancel(self, job_id: str) -> None:
        self._services.queue.cancel(job_id)

    def snapshot(self, job_id: str, *, want_preview: bool = True) -> JobSnapshot:
        queue = self._services.queue
        info = queue.get(job_id) or self._services.history.get_job(job_id)
        if info is None:
            raise UserError(f"job {job_id} does not exist", code="job_not_found")
        preview = self._preview(job_id, info) if want_preview else None
        if info.state.finished:
            with self._lock:
                self._previews.pop(job_id, None)
        return _snapshot(info, self._services.settings.outputs_dir, preview)

    def _preview(self, job_id: str, info: JobInfo) -> _Preview | None:
        """The job's latest preview, remade from its latents when a newer step is there and enough
        time has passed since the last one."""
        import time

        with self._lock:
            current = self._previews.get(job_id)
        if info.state.value != "running":
            return current
        latest = self._services.queue.latents(job_id)
        if latest is None:
            return current
        now = time.monotonic()
        if current is not None and (
            latest.index <= current.step or now - current.made_at < self._preview_interval_s
        ):
            return current
        try:
            from imagestudio.engine.preview import latents_to_rgb
            from imagestudio.registry import get_model

            image = latents_to_rgb(
                latest.latents, get_model(latest.model).family, latest.height, latest.width
            )
        except Exception:
            log.debug("no preview for job %s", job_id, exc_info=True)
            return current
        made = _Preview(latest.index, (current.version + 1) if current else 1, image, now)
        with self._lock:
            self._previews[job_id] = made
        return made

    # ----------------------------------------------------------------- history

    def history(self, query: str = "", limit: int = 60) -> HistoryPage:
        page = self._services.history.list_images(query or None, limit=limit)
        entries = [self._entry(record) for record in page.items]
        return HistoryPage([e for e in entries if e is not None], page.total)

    def history_entry(self, entry_id: str) -> HistoryEntry | None:
        record = self._services.history.get_image(entry_id)
        return None if record is None else self._entry(record)

    def delete(self, entry_id: str) -> bool:
        return self._services.history.delete_image(entry_id)

    def _entry(self, record: ImageRecord) -> HistoryEntry | None:
        path = self._services.history.image_file(record.id)
        if path is None:
            return None
        return HistoryEntry(
            id=record.id,
            job_id=record.job_id,
            path=path,
            prompt=record.prompt,
            model=record.model,
            seed=record.seed,
            width=record.width,
            height=record.height,
            created_at=record.created_at,
            metadata=record.metadata,
        )

    # ----------------------------------------------------------------- system

    def system(self) -> dict[str, Any]:
        from imagestudio.ui.system_info import system_info

        return system_info(self._services)

    def unload(self) -> str | None:
        return self._services.studio.manager.unload()

    # ----------------------------------------------------------------- downloads

    @property
    def _downloads(self) -> Any:
        return self._services.downloads

    def start_download(self, model_id: str) -> None:
        self._downloads.start(model_id)

    def download_status(self, model_id: str) -> dict[str, Any] | None:
        handle = self._downloads.get(model_id)
        return None if handle is None else handle.as_json()

    def cancel_download(self, model_id: str) -> bool:
        return self._downloads.cancel(model_id)


def _snapshot(info: JobInfo, outputs_dir: Path, preview: _Preview | None) -> JobSnapshot:
    progress = info.progress
    results = tuple(
        JobImage(Path(image.path) if image.path else outputs_dir, image.seed, image.width, image.height)
        for image in info.images
    )
    elapsed = progress.elapsed_s if progress is not None else 0.0
    if info.finished_at is not None and info.started_at is not None:
        elapsed = info.finished_at - info.started_at
    return JobSnapshot(
        id=info.id,
        state=info.state.value,
        step=progress.step if progress else 0,
        steps=progress.steps if progress else 0,
        image=progress.image if progress else 1,
        images=progress.images if progress else 1,
        elapsed_s=elapsed,
        eta_s=progress.eta_s if progress else None,
        ahead=(info.queue_position - 1) if info.queue_position else None,
        error=job_failure(info.error) if info.state.value == "failed" else None,
        results=results,
        preview=preview.image if preview else None,
        preview_version=preview.version if preview else 0,
    )
