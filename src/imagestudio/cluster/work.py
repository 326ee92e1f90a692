"""What the head and a worker exchange about one job: plain, picklable data and the worker's interface.

A worker runs a request and reports steps; it never touches the head's disk or history. It returns PNG
bytes with their metadata and the head writes the files and the history row, so boxes need no shared
disk and a job that ran on a worker that then died is recorded once or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from imagestudio.jobs.model import JobError

if TYPE_CHECKING:
    from imagestudio.cluster.capacity import ModelFit, UpscalerFit
    from imagestudio.jobs.model import JobRequest


class WorkerLost(Exception):
    """The worker died or became unreachable during the job (process killed, box gone, network cut)."""


class JobFailed(Exception):
    """The worker ran the job and it failed; ``error`` is what the client is told."""

    def __init__(self, error: JobError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class StepReport:
    """One denoising step, as sent from a worker: no latents, only the preview made from them."""

    image: int
    images: int
    step: int
    steps: int
    preview: Any = None


@dataclass(frozen=True)
class OutputImage:
    """One finished image: the PNG (metadata embedded) and what the history needs to know about it."""

    png: bytes
    basename: str
    seed: int
    width: int
    height: int
    metadata: dict[str, Any]


@dataclass(frozen=True)
class WorkResult:
    model: str
    images: tuple[OutputImage, ...]
    elapsed_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    #: Every model load this worker made so far, in order (the head counts loads per worker from it).
    loaded: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker says about itself when it joins (shown on /api/system)."""

    name: str
    host: str
    device: str
    #: The accelerator's name (``NVIDIA GeForce RTX 4090``), None on CPU.
    gpu: str | None
    #: Models this worker can run: on its own disk (tiny test models always) and fitting its memory.
    models: tuple[str, ...]
    pid: int | None = None
    #: Its memory (``capacity.memory_summary``) and the plan of each model on its disk, fitting or not.
    memory: dict[str, Any] = field(default_factory=dict)
    plans: tuple[ModelFit, ...] = ()
    #: Its node's address on the cluster's network.
    address: str | None = None
    #: Each known upscaler: whether it runs here (the ``upscale`` extra, its file, its memory), else why not.
    upscalers: tuple[UpscalerFit, ...] = ()

    def cost(self, model: str | None) -> tuple[float, int] | None:
        """How fast ``model`` runs here as planned (lower is faster); None when unknown."""
        return next((fit.cost for fit in self.plans if fit.model == model), None)

    def can_upscale(self, upscaler: str) -> bool:
        return any(fit.upscaler == upscaler and fit.fits for fit in self.upscalers)

    def why_not_upscale(self, upscaler: str) -> str:
        """Why ``upscaler`` does not run here (one line)."""
        return next(
            (fit.plan for fit in self.upscalers if fit.upscaler == upscaler),
            "this worker did not say which upscalers it runs",
        )


StepSink = Callable[[StepReport], None]


class Worker(Protocol):
    """The head's handle on one worker (one GPU): runs one job at a time."""

    @property
    def info(self) -> WorkerInfo: ...

    def run(self, job_id: str, request: JobRequest, on_step: StepSink) -> WorkResult:
        """Run the job to the end (blocking) and return its images.

        Raises JobCancelled after :meth:`cancel`, JobFailed for a failed job, WorkerLost when the
        worker died; anything else is a bug in the worker's transport.
        """

    def cancel(self, job_id: str) -> None:
        """Ask the running job to stop after its current step (the model stays loaded)."""

    def close(self) -> None:
        """Release the worker (the head stops using it)."""
