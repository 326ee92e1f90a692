"""What the routes share: reaching the services, validating into typed requests, waiting, formatting."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import Request

from imagestudio.api.errors import ApiError
from imagestudio.api.schemas import JobErrorModel, JobImage, JobProgressModel, JobStatus
from imagestudio.errors import InvalidRequest
from imagestudio.jobs.aio import ClientDisconnected, wait_for_job
from imagestudio.jobs.model import JobInfo, JobState
from imagestudio.quoting import clip_message

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.job_requests import GenerateRequest
    from imagestudio.services import Services

log = logging.getLogger(__name__)


def get_services(request: Request) -> Services:
    return request.app.state.services


def parse_size(size: str | None, param: str = "size") -> tuple[int | None, int | None]:
    """``"1024x768"`` → (1024, 768); ``None``/``"auto"`` → (None, None): the configured default."""
    if size is None or size == "auto":
        return None, None
    width, sep, height = size.partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise InvalidRequest(f"size {size!r} is not WIDTHxHEIGHT (for example 1024x768)", param=param)
    return int(width), int(height)


def require_available(model_id: str, settings: Settings) -> None:
    """Answer 503 with the download command now, rather than after the job waited in the queue."""
    from imagestudio.models.locate import find_model_dir, not_available
    from imagestudio.registry import get_model

    spec = get_model(model_id)
    if not spec.tiny and find_model_dir(spec, settings, build_tiny=False) is None:
        raise not_available(spec)


def build_generate_request(
    settings: Settings, rename: dict[str, str] | None = None, **fields: Any
) -> GenerateRequest:
    """A resolved, validated :class:`GenerateRequest`; ``rename`` maps its field names to the API's."""
    from imagestudio.job_requests import GenerateRequest
    from imagestudio.registry import DEFAULT_GENERATE_MODEL

    fields["model"] = fields.get("model") or DEFAULT_GENERATE_MODEL
    try:
        request = GenerateRequest.build(**fields).resolved(settings)
    except InvalidRequest as exc:
        if rename and exc.param in rename:
            # Only the field's name changes; the code and details stay for clients that translate them.
            raise InvalidRequest(
                exc.message, param=rename[exc.param], code=exc.code, details=exc.details
            ) from None
        raise
    require_available(request.model, settings)
    return request


async def wait_for_result(services: Services, job_id: str, request: Request) -> JobInfo:
    """Wait for a synchronous request's job; a client that goes away has its job cancelled."""
    try:
        info = await wait_for_job(
            services.queue,
            job_id,
            timeout_s=services.settings.server.request_timeout_s,
            is_disconnected=request.is_disconnected,
        )
    except ClientDisconnected:
        log.info("client of job %s disconnected; job cancelled", job_id)
        raise ApiError(409, "the client disconnected; the job was cancelled", type="cancelled") from None
    if info.state is JobState.DONE:
        return info
    error = info.error
    if info.state is JobState.CANCELLED:
        reason = error.message if error else "cancelled"
        raise ApiError(409, f"the job was cancelled ({reason})", type="cancelled", code="job_cancelled")
    assert error is not None
    # A full disk stays full until someone frees space: tell OpenAI's clients not to retry blindly.
    headers = {"x-should-retry": "false"} if error.http_status == 507 else None
    raise ApiError(
        error.http_status, error.message, type=error.type, param=error.param, code=error.code, headers=headers
    )


def image_url(request: Request, image_id: str) -> str:
    return str(request.url_for("get_image", image_id=image_id))


def job_status(info: JobInfo, request: Request) -> JobStatus:
    progress = info.progress
    return JobStatus(
        id=info.id,
        kind=info.kind,
        state=info.state.value,
        model=info.model,
        prompt=info.prompt,
        created_at=info.created_at,
        started_at=info.started_at,
        finished_at=info.finished_at,
        queue_position=info.queue_position,
        progress=JobProgressModel(**progress.as_dict()) if progress is not None else None,
        error=(
            JobErrorModel(
                message=clip_message(info.error.message), type=info.error.type, param=info.error.param
            )
            if info.error is not None
            else None
        ),
        images=[
            JobImage(id=i.id, url=image_url(request, i.id), seed=i.seed, width=i.width, height=i.height)
            for i in info.images
        ],
        request=info.request,
        events_url=str(request.url_for("job_events", job_id=info.id)),
    )


def find_job(services: Services, job_id: str) -> JobInfo:
    """A job from the live queue, else from the history (jobs of earlier runs); 404 if neither knows it."""
    info = services.queue.get(job_id) or services.history.get_job(job_id)
    if info is None:
        raise ApiError(404, f"no job {job_id!r}", code="job_not_found", param="job_id")
    return info
