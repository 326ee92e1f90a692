"""The worker's runner: hands each job's typed request to the studio method that serves it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from imagestudio.requests import EditRequest, EnhanceRequest, GenerateRequest

if TYPE_CHECKING:
    from imagestudio.engine.pipeline_calls import ProgressCallback
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
        if isinstance(request, EnhanceRequest):
            return enhance_result(self.studio, request, cancel)
        raise TypeError(f"no runner for {type(request).__name__}")


def enhance_result(studio: Studio, request: EnhanceRequest, cancel: threading.Event) -> StudioResult:
    """A prompt rewrite as a job result: no images; the rewrite rides in ``extra["enhanced"]``, which the
    queue records with the job (see :func:`imagestudio.jobs.enhance.enhance_via_queue`)."""
    from imagestudio.studio import StudioResult

    result = studio.enhance(request, cancel=cancel)
    return StudioResult(result.model, [], result.seconds, {"enhanced": result.as_dict()})
