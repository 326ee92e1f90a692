"""Downloads in the background, for the HTTP API and the web UI: start, follow, cancel, list states.

The CLI calls :func:`~imagestudio.models.download.download_model` directly (it has a terminal to
draw on). The HTTP API and the web UI hold one :class:`BackgroundDownloads` (on ``app.state``): it runs
each download on its own thread, at most one per model, keeps the latest progress event for polling and
forwards each event to an optional listener (a job's event stream).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.errors import DownloadCancelled, ImageStudioError, UserError
from imagestudio.models.download import DownloadResult, download_variant
from imagestudio.models.locate import effective_repo
from imagestudio.models.progress import DownloadProgress, ProgressCallback
from imagestudio.models.state import ModelState, list_states
from imagestudio.registry import get_model

if TYPE_CHECKING:
    from imagestudio.config import Settings

DownloadStatus = Literal["running", "done", "failed", "cancelled"]


@dataclass
class DownloadHandle:
    """One background download: its latest progress, and how it ended."""

    model_id: str
    #: The weight variant being fetched (``bf16``: the model's own repository).
    weights: str = "bf16"
    cancel_event: threading.Event = field(default_factory=threading.Event)
    status: DownloadStatus = "running"
    progress: DownloadProgress | None = None
    result: DownloadResult | None = None
    error: str | None = None
    #: The error's stable code and values (see errors.ImageStudioError), so a page can say it in its language.
    error_code: str | None = None
    error_details: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    _done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the download to stop at the next chunk; what was fetched is kept to resume."""
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the download ended (True) or ``timeout`` passed (False)."""
        return self._done.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "weights": self.weights,
            "status": self.status,
            "progress": self.progress.as_json() if self.progress else None,
            "result": self.result.as_json() if self.result else None,
            "error": self.error,
            "error_code": self.error_code,
            "error_details": dict(self.error_details),
        }


class BackgroundDownloads:
    """Background downloads for the API and UI: ``start``, ``get``, ``cancel``, ``states``."""

    def __init__(
        self, settings: Settings, *, endpoint: str | None = None, cache_dir: Path | None = None
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._handles: dict[str, DownloadHandle] = {}

    def states(self) -> list[ModelState]:
        """Every model's state on disk (what ``GET /api/models`` lists)."""
        return list_states(self.settings, self.cache_dir)

    def get(self, model_id: str) -> DownloadHandle | None:
        """The current or last download of ``model_id`` in this process, if any."""
        with self._lock:
            return self._handles.get(model_id)

    def start(
        self,
        model_id: str,
        *,
        revision: str | None = None,
        weights: str = "bf16",
        on_progress: ProgressCallback | None = None,
    ) -> DownloadHandle:
        """Start downloading ``model_id`` on a thread; a download already running is returned as is.

        Errors that need no network (unknown id, a tiny model) are raised here, before the thread starts;
        anything later ends as ``status`` ``failed`` with a one-line ``error``.
        """
        spec = get_model(model_id)
        weights = spec.variant(weights).name  # an unknown variant is refused here, before any thread
        if effective_repo(spec, self.settings) is None:
            raise UserError(
                f"{spec.id} is built on this machine on first use; there is nothing to download",
                param="model",
                code="nothing_to_download",
                details={"model": spec.id},
            )
        with self._lock:
            running = self._handles.get(spec.id)
            if running is not None and not running.finished:
                return running
            handle = DownloadHandle(spec.id, weights=weights)
            self._handles[spec.id] = handle
        thread = threading.Thread(
            target=self._run, args=(handle, revision, on_progress), name=f"download-{spec.id}", daemon=True
        )
        thread.start()
        return handle

    def cancel(self, model_id: str) -> bool:
        """Stop the running download of ``model_id``; False when none is running."""
        handle = self.get(model_id)
        if handle is None or handle.finished:
            return False
        handle.cancel()
        return True

    def _run(self, handle: DownloadHandle, revision: str | None, listener: ProgressCallback | None) -> None:
        def on_progress(event: DownloadProgress) -> None:
            handle.progress = event
            if listener is not None:
                listener(event)

        try:
            handle.result = download_variant(
                self.settings,
                handle.model_id,
                handle.weights,
                revision=revision,
                on_progress=on_progress,
                cancel=handle.cancel_event,
                endpoint=self.endpoint,
                cache_dir=self.cache_dir,
            )
            handle.status = "done"
        except DownloadCancelled as exc:
            handle.status, handle.error = "cancelled", str(exc)
        except ImageStudioError as exc:
            handle.status, handle.error = "failed", str(exc)
            handle.error_code, handle.error_details = exc.code, exc.details
        except Exception as exc:  # a bug must end this download, never the server; keep it legible
            handle.status, handle.error = "failed", f"unexpected error: {type(exc).__name__}: {exc}"
            import logging

            logging.getLogger(__name__).exception("download of %s failed", handle.model_id)
        finally:
            handle._done.set()
