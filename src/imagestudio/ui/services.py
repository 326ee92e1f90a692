"""The pages' backend over the server's shared services: the job queue, the history store, the studio.

Everything here reads or calls those services. Its only state is the latest preview of each job a page
is following: previews ride on the queue's step events (see :class:`imagestudio.engine.preview.
LatentPreviewer`), and a page polls for the newest one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import UserError
from imagestudio.ui.backend import HistoryEntry, HistoryPage, JobImage, JobSnapshot

if TYPE_CHECKING:
    from imagestudio.jobs.model import JobError, JobEvent, JobInfo
    from imagestudio.services import Services
    from imagestudio.storage.history import ImageRecord

log = logging.getLogger(__name__)


class JobFailure(UserError):
    """A failed job's error as the page shows it (the queue keeps errors as plain data)."""


def job_failure(error: JobError | None) -> BaseException | None:
    """The exception a page shows for a failed job: translated when it has a code, generic for bugs."""
    from imagestudio.jobs.failures import GENERIC_FAILURE

    if error is None:
        return None
    if error.message == GENERIC_FAILURE and error.code is None:
        # A bug or an environment failure: the page says so generically (the log has the details).
        return RuntimeError(error.message)
    return JobFailure(error.message, param=error.param, code=error.code, details=error.details)


@dataclass
class _Preview:
    version: int = 0
    image: Any = None


class StudioServices:
    """:class:`~imagestudio.ui.backend.StudioBackend` over a running server's :class:`Services`."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._lock = threading.Lock()
        self._previews: dict[str, _Preview] = {}
        self._unsubscribe: dict[str, Any] = {}

    @property
    def settings(self) -> Any:
        return self._services.settings

    # ----------------------------------------------------------------- jobs

    def submit(self, request: Any) -> str:
        queue = self._services.queue
        job_id = queue.submit(request).id
        with self._lock:
            self._previews[job_id] = _Preview()
        # KeyError: already finished and forgotten, so there is nothing to preview.
        with contextlib.suppress(KeyError):
            unsubscribe = queue.subscribe(job_id, self._sink(job_id))
            with self._lock:
                self._unsubscribe[job_id] = unsubscribe
        return job_id

    def _sink(self, job_id: str) -> Any:
        def sink(event: JobEvent) -> None:
            # Called with the queue's lock held: only keep the picture.
            if event.type == "step" and getattr(event, "preview", None) is not None:
                with self._lock:
                    slot = self._previews.get(job_id)
                    if slot is not None:
                        slot.version += 1
                        slot.image = event.preview

        return sink

    def cancel(self, job_id: str) -> None:
        self._services.queue.cancel(job_id)

    def snapshot(self, job_id: str, *, want_preview: bool = True) -> JobSnapshot:
        info = self._services.queue.get(job_id) or self._services.history.get_job(job_id)
        if info is None:
            raise UserError(f"job {job_id} does not exist", code="job_not_found")
        unsubscribe = None
        with self._lock:
            preview = self._previews.get(job_id) if want_preview else None
            if info.state.finished:
                self._previews.pop(job_id, None)
                unsubscribe = self._unsubscribe.pop(job_id, None)
        if unsubscribe is not None:
            unsubscribe()
        snap = _snapshot(info, self._services.settings.outputs_dir, preview)
        if snap.state == "running" and snap.step == 0:
            # Before its first step a job either loads its model or is about to step: only the first
            # is worth saying "Loading the model…" for.
            loaded = getattr(self._services.studio.manager, "loaded_id", None)
            snap = replace(snap, loading=loaded != info.model)
        return snap

    def enhanced(self, job_id: str) -> dict[str, Any] | None:
        """A finished ``enhance`` job's rewrite (prompt, original_prompt, warning…), from the history."""
        details = self._services.history.job_details(job_id) or {}
        return (details.get("extra") or {}).get("enhanced")

    # ----------------------------------------------------------------- history

    def history(self, query: str = "", limit: int = 60, offset: int = 0) -> HistoryPage:
        page = self._services.history.list_images(query or None, limit=limit, offset=offset)
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
            inputs=self._kept_inputs(record.metadata),
        )

    def _kept_inputs(self, metadata: dict[str, Any]) -> tuple[Path, ...]:
        from imagestudio.storage.kept_inputs import input_shas

        found = (self._services.history.input_file(sha) for sha in input_shas(metadata))
        return tuple(path for path in found if path is not None)

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
        preview=preview.image if preview is not None else None,
        preview_version=preview.version if preview is not None else 0,
        kind=info.kind,
        model=info.model,
        prompt=info.prompt,
    )
