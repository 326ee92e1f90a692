"""The project's exception tree.

Two families, because every edge treats them differently:

* :class:`UserError` — the person asked for something we refuse (bad size, unknown model, corrupt image,
  a model that is not downloaded). One readable line; exit code 2 on the CLI, a 4xx/503 JSON error on
  the API, a message next to the control in the UI. Never a traceback.
* everything else — a bug or an environment failure. Logged with its traceback; clients get a generic
  message.

``param`` names the field at fault (a CLI flag, an API field, a config key) so each edge can point at it.
"""

from __future__ import annotations


class ImageStudioError(Exception):
    """Base of every error the project raises on purpose.

    ``code`` is a stable name for the kind of problem and ``details`` its values: the web UI says the
    message in the reader's language from these (``err.<code>`` in ui/i18n). Without a code only the
    English ``message`` exists.
    """

    def __init__(
        self, message: str = "", *, code: str | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = dict(details or {})


class UserError(ImageStudioError):
    """Something the user can fix; shown as one line, never with a traceback."""

    #: HTTP status the API answers with; the CLI always exits 2.
    http_status: int = 400
    #: OpenAI-style error type for the API.
    error_type: str = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.param = param


class ConfigError(UserError):
    """config.yaml (or an override) has a wrong key, type or value."""


class InvalidRequest(UserError):
    """A generation or edit request that cannot be run as asked."""


class InvalidImage(InvalidRequest):
    """An input image that is corrupt, empty, not an image, or too large."""


class ModelNotAvailable(UserError):
    """The model's files are not on this machine (and we never download implicitly)."""

    http_status = 503
    error_type = "model_not_available"


class OutOfMemory(UserError):
    """The job ran out of memory under every plan that was tried; the message says what to change."""

    http_status = 507
    error_type = "insufficient_memory"


class BadOutput(ImageStudioError):
    """The pipeline produced NaN or an all-black image; never saved as if it were fine."""


class JobCancelled(ImageStudioError):
    """The job was cancelled; its partial result (if any) is discarded."""


class NotEnoughDiskSpace(UserError):
    """A download would not fit on the disk; refused before any byte is fetched."""

    http_status = 507
    error_type = "insufficient_storage"


class StorageFull(UserError):
    """The disk holding a folder we write into is full (or the process's file-size limit was hit).

    Nothing half-written is left behind; the message names the folder so the user knows what to free.
    """

    http_status = 507
    error_type = "insufficient_storage"


class DownloadFailed(ImageStudioError):
    """A download stopped (network, hub or disk trouble); what was fetched is kept and resumes next time."""


class DownloadCancelled(JobCancelled):
    """A download was stopped on request; unlike other cancelled jobs its partial files are kept to resume."""


class QueueFull(UserError):
    """The job queue is at ``server.max_queue``; nothing was accepted, so the client may retry."""

    http_status = 429
    error_type = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: int, waiting: int) -> None:
        super().__init__(message, code="queue_full", details={"max": waiting})
        self.retry_after_s = retry_after_s


class ServiceStopping(UserError):
    """The server is shutting down and takes no new jobs."""

    http_status = 503
    error_type = "service_unavailable"


class JobTimedOut(UserError):
    """A synchronous request waited longer than ``server.request_timeout_s``; its job was cancelled."""

    http_status = 504
    error_type = "timeout"


#: Substrings of the messages torch and its allocators use when memory runs out (CUDA, MPS, CPU).
OUT_OF_MEMORY_MESSAGES = ("out of memory", "not enough memory", "failed to allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means "no memory left" on any device (the rest are bugs, not plans to change).

    The one detector every layer uses. By class name and message, so classifying an error never imports
    torch (``torch.OutOfMemoryError`` is matched by its name).
    """
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in OUT_OF_MEMORY_MESSAGES)
