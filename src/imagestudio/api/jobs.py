"""The native job API: submit without waiting, follow progress live (SSE), cancel, look jobs up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Body, Path, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from imagestudio.api.clients import client_address
from imagestudio.api.common import build_generate_request, find_job, get_services, image_url, job_status
from imagestudio.api.edits import EditForm, edit_fields_from_json, submit_edit
from imagestudio.api.errors import ApiError, error_responses, sse_response
from imagestudio.api.schemas import (
    ID_PATTERN,
    ControlBody,
    GenerateJobBody,
    JobBody,
    JobList,
    JobStatus,
    UpscaleJobBody,
)
from imagestudio.api.uploads import base64_upload, decode_upload
from imagestudio.job_requests import ControlInput
from imagestudio.jobs.aio import job_events
from imagestudio.jobs.events import snapshot_events
from imagestudio.jobs.model import JobEvent, JobInfo

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

JobId = Annotated[str, Path(pattern=ID_PATTERN, description="The job's id.")]
#: Comment lines keep idle connections (and proxies) from timing out during a long model load.
KEEPALIVE_S = 15.0
_SUBMIT_ERRORS = error_responses(400, 401, 413, 429, 503)


@router.post(
    "",
    status_code=202,
    response_model=JobStatus,
    responses=_SUBMIT_ERRORS,
    summary="Queue a generate, edit or upscale job (JSON; pictures as base64)",
)
async def create_job(body: Annotated[JobBody, Body()], request: Request, response: Response) -> JobStatus:
    services = get_services(request)

    def submit(control: ControlInput | None) -> JobInfo:
        assert isinstance(body, GenerateJobBody)
        fields = body.model_dump(exclude={"kind", "control", "hires"})
        if body.hires is not None:
            fields.update({f"hires_{key}": value for key, value in body.hires.model_dump().items()})
        built = build_generate_request(services.settings, rename=CONTROL_NAMES, control=control, **fields)
        return services.queue.submit(built)

    if isinstance(body, GenerateJobBody):
        control = await control_input(request, body.control) if body.control is not None else None
        info = await run_in_threadpool(submit, control)
    elif isinstance(body, UpscaleJobBody):
        info = await submit_upscale(request, body)
    else:
        info, _ = await submit_edit(request, edit_fields_from_json(body))
    response.headers["Location"] = str(request.url_for("get_job", job_id=info.id))
    return job_status(info, request)


@router.post(
    "/edits",
    status_code=202,
    response_model=JobStatus,
    responses=_SUBMIT_ERRORS,
    summary="Queue an edit job (multipart, the fields of /v1/images/edits)",
)
async def create_edit_job(form: EditForm, request: Request, response: Response) -> JobStatus:
    info, _ = await submit_edit(request, form)
    response.headers["Location"] = str(request.url_for("get_job", job_id=info.id))
    return job_status(info, request)


@router.get("", response_model=JobList, responses=error_responses(401), summary="Jobs of this server run")
def list_jobs(request: Request) -> JobList:
    """Running first, then waiting in queue order, then recently finished (newest first)."""
    return JobList(jobs=[job_status(info, request) for info in get_services(request).queue.jobs()])


@router.get("/{job_id}", response_model=JobStatus, responses=error_responses(400, 401, 404), name="get_job")
def get_job(job_id: JobId, request: Request) -> JobStatus:
    return job_status(find_job(get_services(request), job_id), request)


@router.delete(
    "/{job_id}",
    response_model=JobStatus,
    responses=error_responses(400, 401, 404),
    summary="Cancel a job (waiting: at once; running: after the current step)",
)
def cancel_job(job_id: JobId, request: Request) -> JobStatus:
    """Returns the job as it is now; a running job turns ``cancelled`` after its current step."""
    services = get_services(request)
    info = services.queue.cancel(job_id) or find_job(services, job_id)
    return job_status(info, request)


@router.get(
    "/{job_id}/events",
    name="job_events",
    response_class=StreamingResponse,
    responses={
        200: sse_response(
            "Server-Sent Events: queued {position}, started, step {image, images, step, steps, fraction, "
            "elapsed_s, eta_s}, then one of done {images}, failed {message, type}, cancelled {message}; the "
            "stream ends after it."
        ),
        **error_responses(400, 401, 404, 429),
    },
)
async def stream_job_events(job_id: JobId, request: Request) -> StreamingResponse:
    services = get_services(request)
    find_job(services, job_id)  # 404 before the stream starts
    # Each open stream holds a subscription and a connection: one client may not open them without end.
    limiter, client = request.app.state.event_streams, client_address(request.scope)
    if not limiter.open(client):
        raise ApiError(
            429,
            f"this client already has {limiter.per_client} event streams open "
            "(server.max_event_streams_per_client); close one first",
            type="rate_limit_exceeded",
            code="too_many_streams",
            headers={"Retry-After": "5"},
        )

    async def stream() -> AsyncIterator[str]:
        try:
            async for chunk in event_chunks():
                yield chunk
        finally:
            limiter.close(client)

    async def event_chunks() -> AsyncIterator[str]:
        number = 0
        try:
            async with job_events(services.queue, job_id) as events:
                while True:
                    try:
                        event = await asyncio.wait_for(events.get(), KEEPALIVE_S)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    number += 1
                    yield format_sse(event, number, request)
                    if event.terminal:
                        return
        except KeyError:
            # Finished in an earlier run (or just forgotten by the queue): the history has the end.
            for event in snapshot_events(find_job(services, job_id)):
                number += 1
                yield format_sse(event, number, request)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


#: The request's names of the hires fields, as the native body spells them.
CONTROL_NAMES = {
    "hires_scale": "hires.scale",
    "hires_upscaler": "hires.upscaler",
    "hires_strength": "hires.strength",
    "hires_steps": "hires.steps",
}


async def control_input(request: Request, body: ControlBody) -> ControlInput:
    """The control body with its image decoded (within the upload limits)."""
    from imagestudio.job_requests import ControlInput

    settings = get_services(request).settings
    image = await decode_upload(request, base64_upload(body.image, field="control.image"), settings)
    return ControlInput.build(type=body.type, image=image, weight=body.weight, start=body.start, end=body.end)


async def submit_upscale(request: Request, body: UpscaleJobBody) -> JobInfo:
    """Decode the picture (within the upload limits), build the upscale request and queue it."""
    from imagestudio.job_requests import build_upscale_request

    services = get_services(request)
    picture = await decode_upload(request, base64_upload(body.image, field="image"), services.settings)

    def submit() -> JobInfo:
        built = build_upscale_request(
            services.settings, picture, upscaler=body.upscaler, scale=body.scale, prompt=body.prompt
        )
        return services.queue.submit(built)

    return await run_in_threadpool(submit)


def format_sse(event: JobEvent, number: int, request: Request) -> str:
    data = dict(event.data)
    if event.type == "done":
        data["images"] = [{**image, "url": image_url(request, image["id"])} for image in data["images"]]
    payload = json.dumps({"job_id": event.job_id, **data}, ensure_ascii=False)
    return f"id: {number}\nevent: {event.type}\ndata: {payload}\n\n"
