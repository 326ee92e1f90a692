"""What the A1111 API keeps between calls: the selected checkpoint, the running job's live preview.

One :class:`SdapiState` per app (on ``app.state.sdapi``), fed by the queue's event stream; and the
model hash A1111 clients show, when it was computed already.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from imagestudio.api.common import get_services

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.jobs.model import JobEvent
    from imagestudio.registry import ModelSpec


@dataclass
class SdapiState:
    """What A1111 keeps between calls: the selected checkpoint and the live preview of the running job.

    One per app (on ``app.state.sdapi``); the preview arrives from the queue's event stream.
    """

    checkpoint: str | None = None
    _preview: Image.Image | None = field(default=None, repr=False)
    _preview_job: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_event(self, event: JobEvent) -> None:
        # Called with the queue's lock held: only store a reference, never encode here.
        if event.type == "step" and event.preview is not None:
            with self._lock:
                self._preview, self._preview_job = event.preview, event.job_id
        elif event.terminal:
            with self._lock:
                if self._preview_job == event.job_id:
                    self._preview, self._preview_job = None, None

    def preview(self, job_id: str) -> Image.Image | None:
        with self._lock:
            return self._preview if self._preview_job == job_id else None


def sdapi_state(request: Request) -> SdapiState:
    return request.app.state.sdapi


def cached_model_hash(request: Request, spec: ModelSpec) -> str | None:
    """The model hash if it was computed already (a listing never reads gigabytes)."""
    from imagestudio.models.locate import find_model_dir
    from imagestudio.storage.hashes import MODEL_HASH_CHARS, transformer_files

    services = get_services(request)
    folder = find_model_dir(spec, services.settings, build_tiny=False)
    files = transformer_files(folder) if folder is not None else []
    digest = services.studio.hash_cache.cached(files) if files else None
    return digest[:MODEL_HASH_CHARS] if digest else None
