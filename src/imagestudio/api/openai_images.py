"""OpenAI-compatible image routes: any client of OpenAI's images API works by changing its base URL.

These calls are synchronous, as OpenAI's are: the request waits in the shared queue like any job,
a client that hangs up has its job cancelled, and ``server.request_timeout_s`` bounds the wait.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from imagestudio.api.common import (
    build_generate_request,
    get_services,
    image_url,
    parse_size,
    wait_for_result,
)
from imagestudio.api.edits import EditForm, submit_edit
from imagestudio.api.errors import ApiError, error_responses
from imagestudio.api.schemas import ImageData, ImageGenerationRequest, ImagesResponse
from imagestudio.errors import InvalidRequest

if TYPE_CHECKING:
    from imagestudio.jobs.model import JobInfo, ResultImage

router = APIRouter(prefix="/v1/images", tags=["OpenAI-compatible"])

#: GenerateRequest's field names → the OpenAI request's, for error messages' ``param``.
_OPENAI_NAMES = {"width": "size", "height": "size", "count": "n"}
_SYNC_ERRORS = error_responses(400, 401, 409, 413, 429, 503, 504)


@router.post(
    "/generations",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    responses=_SYNC_ERRORS,
    summary="Create images from a prompt (OpenAI images.generate)",
)
async def create_images(body: ImageGenerationRequest, request: Request) -> ImagesResponse:
    services = get_services(request)
    if body.stream:
        raise InvalidRequest(
            "streaming is not supported here; for live progress use POST /api/jobs and "
            "GET /api/jobs/{id}/events",
            param="stream",
        )
    width, height = parse_size(body.size)

    def submit() -> JobInfo:
        generate = build_generate_request(
            services.settings,
            rename=_OPENAI_NAMES,
            model=body.model,
            prompt=body.prompt,
            negative_prompt=body.negative_prompt,
            width=width,
            height=height,
            steps=body.steps,
            guidance_scale=body.guidance_scale,
            seed=body.seed,
            count=body.n or 1,
            variety=body.variety,
        )
        return services.queue.submit(generate)

    job = await run_in_threadpool(submit)
    return await _respond(request, await wait_for_result(services, job.id, request), body.response_format)


@router.post(
    "/edits",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 409, 413, 429, 503, 504),
    summary="Edit 1–3 images with an instruction, or inpaint with a mask (OpenAI images.edit)",
)
async def edit_images(form: EditForm, request: Request) -> ImagesResponse:
    services = get_services(request)
    upload, response_format = form
    job = await run_in_threadpool(submit_edit, services, upload)
    return await _respond(request, await wait_for_result(services, job.id, request), response_format)


async def _respond(request: Request, info: JobInfo, response_format: str | None) -> ImagesResponse:
    as_url = response_format == "url"

    def item(image: ResultImage) -> ImageData:
        if as_url:
            return ImageData(url=image_url(request, image.id), id=image.id, seed=image.seed)
        if image.path is None or not Path(image.path).is_file():
            raise ApiError(500, "a result image is missing on disk", type="server_error")
        encoded = base64.b64encode(Path(image.path).read_bytes()).decode("ascii")
        return ImageData(b64_json=encoded, id=image.id, seed=image.seed)

    if not info.images:
        raise ApiError(500, "the job finished without images", type="server_error")
    data = await run_in_threadpool(lambda: [item(image) for image in info.images])
    first = info.images[0]
    return ImagesResponse(
        created=int(info.finished_at or info.created_at), data=data, size=f"{first.width}x{first.height}"
    )
