"""How an exception that ended a job becomes what its client is told: one vocabulary for every worker.

The in-process worker thread and the cluster's worker actors both classify with :func:`job_error`, so a
job fails the same way wherever it ran.
"""

from __future__ import annotations

import logging

from imagestudio.errors import ImageStudioError, OutOfMemory, UserError, is_out_of_memory
from imagestudio.jobs.model import JobError

log = logging.getLogger(__name__)

GENERIC_FAILURE = "internal error while running the job; the server log has the details"
OUT_OF_MEMORY = (
    "out of memory on the device; try a smaller size, fewer images, or an offload setting "
    "(device.enable_cpu_offload)"
)


def user_error(exc: UserError) -> JobError:
    """A refusal the user can act on, with its own status, type, field, code and values."""
    return JobError(exc.message, exc.error_type, exc.http_status, exc.param, exc.code, exc.details)


def job_error(job_id: str, exc: BaseException) -> JobError:
    """The failure ``exc`` means for job ``job_id``, logged at the level it deserves.

    User errors keep their message (one warning line, so a refused job is in the server log too);
    deliberate, explained failures (NaN/black output) keep theirs without a traceback; running out of
    device memory is :class:`~imagestudio.errors.OutOfMemory`'s 507; anything else is a bug: logged
    with its traceback, reported generically (no internals reach a client).
    """
    if isinstance(exc, UserError):
        log.warning("job %s failed (%d %s): %s", job_id, exc.http_status, exc.error_type, exc.message)
        return user_error(exc)
    if isinstance(exc, ImageStudioError):
        log.warning("job %s failed: %s", job_id, exc)
        return JobError(str(exc), code=exc.code, details=exc.details)
    if is_out_of_memory(exc):
        log.warning("job %s ran out of memory: %s", job_id, exc)
        return user_error(OutOfMemory(OUT_OF_MEMORY, code="out_of_memory"))
    log.error("job %s failed with an unexpected error", job_id, exc_info=exc)
    return JobError(GENERIC_FAILURE)
