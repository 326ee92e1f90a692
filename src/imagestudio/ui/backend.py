"""What the pages need from the rest of the studio, as plain values.

The pages never touch a pipeline: they submit typed requests to the shared job queue and read the
history store. :class:`StudioBackend` is the narrow surface they use; :mod:`imagestudio.ui.live_backend`
implements it over the real queue, history and model manager of the running server.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from imagestudio.jobs.model import JobProgress, JobState
from imagestudio.storage.saved_image import SavedImage

if TYPE_CHECKING:
    from PIL.Image import Image

    from imagestudio.config import Settings
    from imagestudio.jobs.model import JobRequest


@dataclass(frozen=True)
class JobSnapshot:
    """A job as the page shows it, at one moment."""

    id: str
    state: JobState
    #: Where a running job is (None before its first step, and for jobs that never ran).
    progress: JobProgress | None = None
    #: A finished job's run time, start to end; while it runs, ``progress.elapsed_s`` says it.
    run_s: float | None = None
    #: Jobs ahead of this one in the queue (queued jobs only).
    ahead: int | None = None
    #: The job's error: a UserError is shown translated, anything else as a generic message.
    error: BaseException | None = None
    results: tuple[SavedImage, ...] = ()
    #: The newest latent preview (a small picture); a new one is a new object.
    preview: Image | None = None
    #: What the queue panel lists: the job's kind (generate/edit), model and prompt; the model also
    #: tells the page to say "noise is expected" next to an offline model's result.
    kind: str | None = None
    model: str | None = None
    prompt: str | None = None
    #: Running, no step yet, and the model is not the loaded one: the wait is the model loading.
    loading: bool = False

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def elapsed_s(self) -> float:
        """Seconds the job has run: to its end once finished, else to its latest step."""
        if self.run_s is not None:
            return self.run_s
        return self.progress.elapsed_s if self.progress is not None else 0.0


@dataclass(frozen=True)
class HistoryEntry:
    """One past image as the History page lists it (the history store keeps one row per image)."""

    id: str
    job_id: str | None
    path: Path
    prompt: str
    model: str | None
    seed: int
    width: int
    height: int
    created_at: float
    #: Everything recorded with the image (the request's fields, timings, versions).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The kept input pictures it was made from (an edit's references, an img2img start picture and
    #: mask), in the order the metadata names them; empty for text-to-image and for older rows.
    inputs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    total: int


class StudioBackend(Protocol):
    """The services behind the pages."""

    @property
    def settings(self) -> Settings: ...

    def submit(self, request: JobRequest, client: str | None = None) -> str:
        """Queue a resolved request for ``client`` (the browser's address, held to its share of the
        queue as the HTTP API's clients are); returns the job id."""
        ...

    def snapshot(self, job_id: str) -> JobSnapshot:
        """The job now (a UserError for an id neither the queue nor the history knows)."""
        ...

    def watch(self, job_id: str) -> Generator[JobSnapshot, None, None]:
        """The job now, then again each time it changes, until it has finished.

        Blocks on the queue's events between two snapshots; closing the iterator stops following (it
        does not cancel the job) and unsubscribes.
        """
        ...

    def cancel(self, job_id: str) -> None: ...

    def enhanced(self, job_id: str) -> dict[str, Any] | None:
        """The rewrite a finished ``enhance`` job made (None when it has none)."""
        ...

    def history(self, query: str = "", limit: int = 60, offset: int = 0) -> HistoryPage: ...

    def history_entry(self, entry_id: str) -> HistoryEntry | None: ...

    def delete(self, entry_id: str) -> bool: ...

    def system(self) -> dict[str, Any]: ...

    def unload(self) -> str | None: ...

    def start_download(self, model_id: str, weights: str = "bf16") -> None:
        """Start fetching a model (one weight variant of it) in the background (a UserError when there is
        nothing to fetch)."""
        ...

    def download_status(self, model_id: str) -> dict[str, Any] | None:
        """The model's current or last download: status, progress, error (None: never started)."""
        ...

    def cancel_download(self, model_id: str) -> bool: ...
