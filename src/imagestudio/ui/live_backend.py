"""The pages' backend over the running server: its job queue, history store, studio and downloads.

:class:`LiveBackend` implements :class:`~imagestudio.ui.backend.StudioBackend`. It keeps no state of its
own: a page following a job subscribes to the queue's events for as long as it follows
(:func:`imagestudio.jobs.follow.job_events`), and each event, previews included, becomes the snapshot
the page draws.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import UserError
from imagestudio.jobs.model import JobProgress, JobState
from imagestudio.ui.backend import HistoryEntry, HistoryPage, JobSnapshot

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.history.store import ImageRecord
    from imagestudio.jobs.model import JobError, JobEvent, JobInfo, JobRequest
    from imagestudio.models.background import BackgroundDownloads
    from imagestudio.services import Services


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


class LiveBackend:
    """:class:`~imagestudio.ui.backend.StudioBackend` over a running server's :class:`Services`."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @property
    def settings(self) -> Settings:
        return self._services.settings

    # ----------------------------------------------------------------- jobs

    def submit(self, request: JobRequest, client: str | None = None) -> str:
        # The pages' events run in Gradio's queue, outside the HTTP request that the API's client tag
        # covers: the page names its client itself, and the queue holds it to the same share.
        return self._services.queue.submit(request, client).id

    def cancel(self, job_id: str) -> None:
        self._services.queue.cancel(job_id)

    def snapshot(self, job_id: str) -> JobSnapshot:
        info = self._services.queue.get(job_id) or self._services.history.get_job(job_id)
        if info is None:
            raise UserError(f"job {job_id} does not exist", code="job_not_found")
        return self._with_loading(self._snapshot(info))

    def watch(self, job_id: str) -> Generator[JobSnapshot, None, None]:
        from imagestudio.jobs.follow import job_events

        queue = self._services.queue
        info = queue.get(job_id)
        if info is None:
            # Finished long ago (the queue forgot it): the history has its end.
            yield self.snapshot(job_id)
            return
        snap = self._with_loading(self._snapshot(info))
        yield snap
        if snap.finished:
            return
        events = job_events(queue, job_id)
        try:
            event = next(events, None)
        except KeyError:
            # It finished and was forgotten between the look and the subscription: the history has it.
            yield self.snapshot(job_id)
            return
        try:
            while event is not None:
                snap = self._apply(snap, event)
                yield snap
                event = next(events, None)
        finally:
            events.close()  # unsubscribes, also when the page stops following early
        if not snap.finished:
            # The queue forgot the job without saying how it ended: the history knows.
            yield self.snapshot(job_id)

    def _apply(self, snap: JobSnapshot, event: JobEvent) -> JobSnapshot:
        """The snapshot after ``event``: each event says all a page needs of what changed."""
        if event.info is not None:  # the terminal event carries the job's final state
            return self._snapshot(event.info)
        if event.type == "queued":
            # Also back in line after a lost worker (the cluster's queue): its steps start over.
            position = int(event.data["position"])
            return replace(snap, state=JobState.QUEUED, ahead=position - 1, progress=None)
        if event.type == "started":
            return self._with_loading(replace(snap, state=JobState.RUNNING, ahead=None, progress=None))
        if event.type == "step":
            preview = event.preview if event.preview is not None else snap.preview
            progress = _progress(event.data)
            return replace(snap, state=JobState.RUNNING, ahead=None, progress=progress, preview=preview)
        return snap

    def _with_loading(self, snap: JobSnapshot) -> JobSnapshot:
        """Before its first step a job either loads its model or is about to step: only the first is
        worth saying "Loading the model…" for."""
        if snap.state is not JobState.RUNNING or snap.progress is not None:
            return replace(snap, loading=False)
        return replace(snap, loading=not self._services.is_loaded(snap.model))

    def _snapshot(self, info: JobInfo) -> JobSnapshot:
        run_s = None
        if info.finished_at is not None and info.started_at is not None:
            run_s = info.finished_at - info.started_at
        return JobSnapshot(
            id=info.id,
            state=info.state,
            progress=info.progress,
            run_s=run_s,
            ahead=(info.queue_position - 1) if info.queue_position else None,
            error=job_failure(info.error) if info.state is JobState.FAILED else None,
            results=info.images,
            kind=info.kind,
            model=info.model,
            prompt=info.prompt,
        )

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
        return self._services.unload()

    # ----------------------------------------------------------------- downloads

    @property
    def _downloads(self) -> BackgroundDownloads:
        return self._services.downloads

    def start_download(self, model_id: str, weights: str = "bf16") -> None:
        self._downloads.start(model_id, weights=weights)

    def download_status(self, model_id: str) -> dict[str, Any] | None:
        handle = self._downloads.get(model_id)
        return None if handle is None else handle.as_json()

    def cancel_download(self, model_id: str) -> bool:
        return self._downloads.cancel(model_id)


def _progress(data: Mapping[str, Any]) -> JobProgress:
    """A step event's data (``JobProgress.as_dict``) as the progress it was made from."""
    eta = data.get("eta_s")
    return JobProgress(
        image=int(data["image"]),
        images=int(data["images"]),
        step=int(data["step"]),
        steps=int(data["steps"]),
        elapsed_s=float(data["elapsed_s"]),
        eta_s=None if eta is None else float(eta),
    )
