"""The queue's job handler over a Studio: each job's typed request goes to the studio method serving it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from imagestudio.job_requests import EditRequest, EnhanceRequest, GenerateRequest

if TYPE_CHECKING:
    from pathlib import Path

    from imagestudio.engine.pipeline_calls import ProgressCallback
    from imagestudio.jobs.model import JobRequest
    from imagestudio.studio import Studio, StudioResult


class StudioDispatcher:
    """The :data:`~imagestudio.jobs.local_queue.JobHandler` over a Studio: ``dispatcher(request, on_step,
    cancel)``.

    One thread calls it (the queue's worker, or a cluster worker's job thread), so the studio and its
    model manager are used by one thread. ``out_dir`` replaces the outputs folder (a cluster worker
    writes into a scratch folder and sends the bytes to the head).
    """

    def __init__(self, studio: Studio, out_dir: Path | None = None) -> None:
        self.studio = studio
        self.out_dir = out_dir

    def __call__(
        self, request: JobRequest, on_step: ProgressCallback, cancel: threading.Event
    ) -> StudioResult:
        if isinstance(request, GenerateRequest):
            return self.studio.generate(request, self.out_dir, on_step=on_step, cancel=cancel)
        if isinstance(request, EditRequest):
            return self.studio.edit(request, self.out_dir, on_step=on_step, cancel=cancel)
        if isinstance(request, EnhanceRequest):
            return enhance_result(self.studio, request, cancel)
        raise TypeError(f"no studio method serves {type(request).__name__}")


def enhance_result(studio: Studio, request: EnhanceRequest, cancel: threading.Event) -> StudioResult:
    """A prompt rewrite as a job result: no images; the rewrite rides in ``extra["enhanced"]``, which the
    queue records with the job (the API and the UI read it back from the job's history details)."""
    from imagestudio.studio import StudioResult

    result = studio.enhance(request, cancel=cancel)
    return StudioResult(result.model, [], result.seconds, {"enhanced": result.as_dict()})
