"""OpenAI-compatible image routes: any client of OpenAI's images API works by changing its base URL.

These calls are synchronous, as OpenAI's are: the request waits in the shared queue like any job, a
client that hangs up has its job cancelled, and ``server.request_timeout_s`` bounds the wait (the job is
cancelled then too, so a client's automatic retry never finds the first attempt still running). With
``stream: true`` the answer is Server-Sent Events named as OpenAI names them: up to ``partial_images``
``image_generation.partial_image`` / ``image_edit.partial_image`` events made from the live previews the
queue attaches to step events, then one ``…completed`` event per image.

Tolerance: OpenAI's model names map to models here (see :mod:`imagestudio.api.model_choice`), fields these
models cannot use are accepted and recorded in the image's metadata, unknown fields are logged and
ignored — the same for JSON and multipart. ``background: transparent`` is refused: nothing here has alpha.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from imagestudio.api.common import (
    build_generate_request,
    get_services,
    image_url,
    parse_size,
    wait_for_result,
)
from imagestudio.api.edits import EditForm, check_options, client_record, submit_edit
from imagestudio.api.errors import ApiError, error_responses, sse_response
from imagestudio.api.model_choice import ModelChoice, choose_model
from imagestudio.api.schemas import ImageData, ImageGenerationRequest, ImageOptions, ImagesResponse, Usage
from imagestudio.jobs.aio import job_events
from imagestudio.jobs.model import JobState
from imagestudio.storage.formats import encode_image, encode_saved

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.jobs.model import JobInfo, SavedImage
    from imagestudio.services import Services

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/images", tags=["OpenAI-compatible"])

#: GenerateRequest's field names → the OpenAI request's, for error messages' ``param``.
_OPENAI_NAMES = {"width": "size", "height": "size", "count": "n"}
_SYNC_ERRORS = error_responses(400, 401, 409, 413, 429, 503, 504, 507)
#: The 200 answer's second form: with ``stream: true`` the images come as OpenAI's Server-Sent Events (the
#: JSON form comes from ``response_model``; FastAPI puts both under the one 200).
_STREAMED: dict[int | str, dict[str, Any]] = {
    200: sse_response(
        "The images as JSON; with stream=true, Server-Sent Events as OpenAI sends them: "
        "<kind>.partial_image {b64_json, partial_image_index, …} while it runs, then <kind>.completed "
        "{b64_json, …} per image (kind: image_generation or image_edit)."
    )
}
#: Partial images are live previews (1/8 of the image's size) scaled up to at most this many pixels a side.
PARTIAL_MAX_SIDE = 512
#: The quality values OpenAI's stream events can carry; others are echoed as "auto".
_EVENT_QUALITIES = frozenset({"low", "medium", "high", "auto"})


@dataclass(frozen=True)
class Reply:
    """How to answer one request: which events, which format, which model to name."""

    kind: Literal["image_generation", "image_edit"]
    options: ImageOptions
    choice: ModelChoice

    @property
    def as_url(self) -> bool:
        if self.options.response_format is not None:
            return self.options.response_format == "url"
        # OpenAI's dall-e models answer with URLs unless told otherwise (LibreChat reads data[0].url).
        return (self.choice.requested or "").startswith("dall-e")

    @property
    def output_format(self) -> Literal["png", "jpeg", "webp"]:
        return self.options.output_format or "png"

    @property
    def event_quality(self) -> str:
        quality = self.options.quality or "auto"
        return quality if quality in _EVENT_QUALITIES else "auto"


@router.post(
    "/generations",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    responses={**_STREAMED, **_SYNC_ERRORS},
    summary="Create images from a prompt (OpenAI images.generate); stream=true for partial images",
)
async def create_images(body: ImageGenerationRequest, request: Request) -> ImagesResponse | StreamingResponse:
    services = get_services(request)
    check_options(body, where="POST /v1/images/generations")
    choice = choose_model(services.settings, body.model, "generate")
    width, height = parse_size(body.size)

    def submit() -> JobInfo:
        from imagestudio.registry import MODELS

        negative, client = body.negative_prompt, client_record(choice, body)
        spec = MODELS.get(choice.model)
        if spec is not None and spec.fixed_guidance is not None and negative:
            # Turbo runs without guidance: a negative prompt is recorded, not used — as on /sdapi/v1.
            negative, client = None, {**(client or {}), "negative_prompt": negative}
        generate = build_generate_request(
            services.settings,
            rename=_OPENAI_NAMES,
            model=choice.model,
            prompt=body.prompt,
            negative_prompt=negative,
            width=width,
            height=height,
            steps=body.steps,
            guidance_scale=body.guidance_scale,
            seed=body.seed,
            count=body.n or 1,
            client=client,
            variety=body.variety,
        )
        return services.queue.submit(generate)

    job = await run_in_threadpool(submit)
    reply = Reply("image_generation", body, choice)
    if body.stream:
        return _stream(request, services, job.id, reply)
    return await _respond(request, await wait_for_result(services, job.id, request), reply)


@router.post(
    "/edits",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    responses={**_STREAMED, **_SYNC_ERRORS},
    summary="Edit 1–3 images with an instruction, or inpaint with a mask (OpenAI images.edit)",
)
async def edit_images(form: EditForm, request: Request) -> ImagesResponse | StreamingResponse:
    services = get_services(request)
    check_options(form.options, where="POST /v1/images/edits")
    job, choice = await submit_edit(request, form)
    reply = Reply("image_edit", form.options, choice)
    if form.options.stream:
        return _stream(request, services, job.id, reply)
    return await _respond(request, await wait_for_result(services, job.id, request), reply)


def _encoded(image: SavedImage, reply: Reply) -> str:
    if image.path is None or not Path(image.path).is_file():
        raise ApiError(500, "a result image is missing on disk", type="server_error")
    data = encode_saved(Path(image.path), reply.output_format, compression=reply.options.output_compression)
    return base64.b64encode(data).decode("ascii")


async def _respond(request: Request, info: JobInfo, reply: Reply) -> ImagesResponse:
    def item(image: SavedImage) -> ImageData:
        if reply.as_url:
            return ImageData(url=image_url(request, image.id), id=image.id, seed=image.seed)
        return ImageData(b64_json=_encoded(image, reply), id=image.id, seed=image.seed)

    if not info.images:
        raise ApiError(500, "the job finished without images", type="server_error")
    data = await run_in_threadpool(lambda: [item(image) for image in info.images])
    first = info.images[0]
    return ImagesResponse(
        created=int(info.finished_at or info.created_at),
        data=data,
        # A URL serves the stored PNG; b64_json is converted to what was asked for.
        output_format="png" if reply.as_url else reply.output_format,
        size=f"{first.width}x{first.height}",
        quality=reply.options.quality,
        model=info.model or reply.choice.model,
        usage=Usage(),
    )


# --------------------------------------------------------------------------- streaming


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _partial_b64(preview: Image.Image, width: int, height: int, reply: Reply) -> str:
    from PIL import Image as PILImage

    scale = min(1.0, PARTIAL_MAX_SIDE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shown = preview.resize(size, PILImage.Resampling.BILINEAR)
    data = encode_image(shown, reply.output_format, compression=reply.options.output_compression)
    return base64.b64encode(data).decode("ascii")


def _stream(request: Request, services: Services, job_id: str, reply: Reply) -> StreamingResponse:
    """The job as OpenAI's image stream; a client that goes away, or a timeout, cancels the job."""
    queue = services.queue
    limit = reply.options.partial_images or 0
    timeout_s = services.settings.server.request_timeout_s
    info = queue.get(job_id)
    request_fields = info.request if info is not None else {}
    width = int(request_fields.get("width") or 64)
    height = int(request_fields.get("height") or 64)
    common = {
        "background": "opaque",
        "output_format": reply.output_format,
        "quality": reply.event_quality,
        "size": f"{width}x{height}",
    }

    async def events() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        sent = 0
        finished = False
        try:
            async with job_events(queue, job_id) as incoming:
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        yield _sse("error", _stream_timeout(timeout_s))
                        return
                    try:
                        event = await asyncio.wait_for(incoming.get(), min(remaining, 1.0))
                    except asyncio.TimeoutError:
                        continue
                    if event.type == "step" and event.preview is not None and sent < limit:
                        b64 = await run_in_threadpool(_partial_b64, event.preview, width, height, reply)
                        yield _sse(
                            f"{reply.kind}.partial_image",
                            {
                                "type": f"{reply.kind}.partial_image",
                                "b64_json": b64,
                                "created_at": int(time.time()),
                                "partial_image_index": sent,
                                **common,
                            },
                        )
                        sent += 1
                    elif event.terminal:
                        finished = True
                        assert event.info is not None
                        async for chunk in _final_events(event.info, reply, common):
                            yield chunk
                        return
        finally:
            if not finished:
                # The client hung up, or the wait timed out: the job must not run on unseen.
                queue.cancel(job_id)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _final_events(info: JobInfo, reply: Reply, common: dict[str, Any]) -> AsyncIterator[bytes]:
    if info.state is not JobState.DONE or not info.images:
        error = info.error
        if info.state is JobState.CANCELLED:
            body = _error_body("the job was cancelled", "cancelled", "job_cancelled")
        elif error is not None:
            body = {"message": error.message, "type": error.type, "param": error.param, "code": error.code}
        else:
            body = _error_body("the job finished without images", "server_error", None)
        yield _sse("error", {"type": "error", "error": body})
        return
    for image in info.images:
        b64 = await run_in_threadpool(_encoded, image, reply)
        yield _sse(
            f"{reply.kind}.completed",
            {
                "type": f"{reply.kind}.completed",
                "b64_json": b64,
                "created_at": int(info.finished_at or time.time()),
                **common,
                "size": f"{image.width}x{image.height}",
                "usage": Usage().model_dump(),
                # Extensions, as in the JSON answer.
                "id": image.id,
                "seed": image.seed,
                "model": info.model,
            },
        )


def _stream_timeout(timeout_s: float) -> dict[str, Any]:
    message = f"the job did not finish within {timeout_s:g}s (server.request_timeout_s) and was cancelled"
    return {"type": "error", "error": _error_body(message, "timeout", "timed_out")}


def _error_body(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"message": message, "type": kind, "param": None, "code": code}
