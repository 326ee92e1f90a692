"""The worker's runner: hands each job's typed request to the studio method that serves it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from imagestudio.requests import EditRequest, GenerateRequest

if TYPE_CHECKING:
    from imagestudio.engine.runners import ProgressCallback
    from imagestudio.studio import Studio, StudioResult


class StudioRunner:
    """``runner(request, on_step, cancel)`` for :class:`~imagestudio.jobs.queue.JobQueue`, over a Studio.

    The worker thread is the only caller, so the studio (and its model manager) is used by one thread.
    """

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def __call__(self, request: Any, on_step: ProgressCallback, cancel: threading.Event) -> StudioResult:
        if isinstance(request, GenerateRequest):
            return self.studio.generate(request, on_step=on_step, cancel=cancel)
        if isinstance(request, EditRequest):
            return self.studio.edit(request, on_step=on_step, cancel=cancel)
        raise TypeError(f"no runner for {type(request).__name__}")
