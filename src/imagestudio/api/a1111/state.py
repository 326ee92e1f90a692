"""What the A1111 API keeps between calls: the selected checkpoint, the running job's live preview.

One :class:`SdapiState` per app (on ``app.state.sdapi``), fed by the queue's event stream; and the
model hash A1111 clients show, when it was computed already.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request

from imagestudio.api.common import get_services
from imagestudio.registry import MODELS

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.jobs.model import JobEvent
    from imagestudio.registry import ModelSpec

log = logging.getLogger(__name__)

#: The A1111 options a client set that outlive the server (the selected checkpoint), beside the history.
OPTIONS_FILE = "a1111-options.json"


@dataclass
class SdapiState:
    """What A1111 keeps between calls: the selected checkpoint and the live preview of the running job.

    One per app (on ``app.state.sdapi``); the preview arrives from the queue's event stream. A client's
    checkpoint is kept in ``options_file`` (A1111 keeps it in its config too): a restart must not send a
    client that chose a model back to a default it may not have.
    """

    checkpoint: str | None = None
    options_file: Path | None = None
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

    @classmethod
    def load(cls, options_file: Path) -> SdapiState:
        """The state with the checkpoint a client chose before; an unreadable file is a warning."""
        checkpoint = None
        try:
            saved = json.loads(options_file.read_text(encoding="utf-8"))
            chosen = saved.get("sd_model_checkpoint") if isinstance(saved, dict) else None
            checkpoint = chosen if isinstance(chosen, str) and chosen in MODELS else None
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s (the A1111 checkpoint starts as the default): %s", options_file, exc)
        return cls(checkpoint=checkpoint, options_file=options_file)

    def choose(self, model_id: str) -> None:
        """Select ``model_id`` for later calls and keep the choice for the next start."""
        from imagestudio.storage.files import atomic_write_text

        self.checkpoint = model_id
        if self.options_file is not None:
            atomic_write_text(self.options_file, json.dumps({"sd_model_checkpoint": model_id}) + "\n")


def sdapi_state(request: Request) -> SdapiState:
    return request.app.state.sdapi


def selected_checkpoint(request: Request) -> str:
    """The checkpoint a client chose, else the server's generate model (``server.auto_generate_model``)."""
    return sdapi_state(request).checkpoint or get_services(request).settings.server.auto_generate_model


def cached_model_hash(request: Request, spec: ModelSpec) -> str | None:
    """The model hash if it was computed already (a listing never reads gigabytes)."""
    from imagestudio.models.locate import find_model_dir
    from imagestudio.storage.hashes import MODEL_HASH_CHARS, transformer_files

    services = get_services(request)
    folder = find_model_dir(spec, services.settings, build_tiny=False)
    files = transformer_files(folder) if folder is not None else []
    digest = services.studio.hash_cache.cached(files) if files else None
    return digest[:MODEL_HASH_CHARS] if digest else None
