"""What a job is, as every consumer sees it: states, events, and a read-only snapshot.

These are plain data types with no behaviour that touches threads, models or files, so the history
store, the HTTP API and the UI can all speak them without importing the queue. A job's images are
:class:`~imagestudio.storage.saved_image.SavedImage` (re-exported here for the job's consumers).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeAlias

from imagestudio.job_requests import EditRequest, EnhanceRequest, GenerateRequest
from imagestudio.storage.saved_image import SavedImage

__all__ = [
    "EVENT_TYPES",
    "TERMINAL_EVENTS",
    "EventSink",
    "JobError",
    "JobEvent",
    "JobInfo",
    "JobProgress",
    "JobRequest",
    "JobState",
    "QueueStats",
    "SavedImage",
    "new_id",
    "request_kind",
]

#: Every request a job can run: the queue, its handler and its recorder are typed over this union.
JobRequest: TypeAlias = GenerateRequest | EditRequest | EnhanceRequest


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


#: Event types, in the order a job can emit them (``queued`` repeats when the position changes,
#: ``step`` once per denoising step); every job ends with exactly one of done/failed/cancelled.
EVENT_TYPES = ("queued", "started", "step", "done", "failed", "cancelled")
TERMINAL_EVENTS = frozenset({"done", "failed", "cancelled"})


def new_id() -> str:
    """An opaque, unguessable id (for jobs and images): 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


def request_kind(request: JobRequest) -> str:
    """``GenerateRequest`` → ``generate``, ``EditRequest`` → ``edit``: the job kind from its request type."""
    return type(request).__name__.removesuffix("Request").lower()


@dataclass(frozen=True)
class JobError:
    """Why a job failed, in the API's error vocabulary (``type`` as in OpenAI's error objects)."""

    message: str
    type: str = "server_error"
    http_status: int = 500
    param: str | None = None
    #: The UserError's stable code and values (see errors.UserError), so a UI can say it in its language.
    code: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobProgress:
    """Where a running job is: image ``image`` of ``images``, step ``step`` of ``steps``."""

    image: int
    images: int
    step: int
    steps: int
    elapsed_s: float
    #: Estimated seconds left; None until two steps have been timed.
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return ((self.image - 1) * self.steps + self.step) / max(1, self.images * self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "images": self.images,
            "step": self.step,
            "steps": self.steps,
            "fraction": round(self.fraction, 4),
            "elapsed_s": round(self.elapsed_s, 3),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 3),
        }


@dataclass(frozen=True)
class JobEvent:
    """One thing that happened to a job; ``data`` is JSON-ready.

    Terminal events (done/failed/cancelled) also carry the job's final snapshot in ``info``, so a
    waiter has everything without asking the queue again (which may have forgotten the job by then).
    """

    job_id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    info: JobInfo | None = field(default=None, compare=False, repr=False)
    #: On step events: what the queue's ``preview`` function made of the step (e.g. a small image).
    preview: Any = field(default=None, compare=False, repr=False)

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS


@dataclass(frozen=True)
class JobInfo:
    """A consistent snapshot of one job, from the live queue or from the history store."""

    id: str
    kind: str
    state: JobState
    model: str | None
    prompt: str | None
    request: dict[str, Any]
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    #: 1 = next to run; None unless queued.
    queue_position: int | None = None
    progress: JobProgress | None = None
    error: JobError | None = None
    images: tuple[SavedImage, ...] = ()


#: Receives events; called with the queue's lock held, so it must only hand the event over.
EventSink = Callable[[JobEvent], None]


@dataclass(frozen=True)
class QueueStats:
    """A queue's load at one moment: the running job, how many wait, the bound, whether it serves."""

    running: str | None
    queued: int
    max_queue: int
    worker_alive: bool
