"""Past images: list and search them, fetch one as PNG, delete one (the file too).

Images are addressed only by opaque ids; the file behind an id is resolved inside the outputs
directory by the history store, so no client input ever becomes a path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse

from imagestudio.api.common import get_services, image_url
from imagestudio.api.errors import ApiError, error_responses
from imagestudio.api.schemas import ID_PATTERN, Deleted, HistoryImage, HistoryPage
from imagestudio.history.store import ImageRecord
from imagestudio.job_requests import MAX_PROMPT_CHARS

router = APIRouter(prefix="/api", tags=["history"])

ImageId = Annotated[str, Path(pattern=ID_PATTERN, description="The image's id.")]


@router.get(
    "/history",
    response_model=HistoryPage,
    responses=error_responses(400, 401),
    summary="Past images, newest first, optionally searched by prompt text",
)
def list_history(
    request: Request,
    q: Annotated[
        str | None, Query(max_length=MAX_PROMPT_CHARS, description="Text the prompt contains (any case).")
    ] = None,
    limit: Annotated[
        int | None,
        Query(ge=1, le=1000, description="Page size (default 50), at most server.max_history_page (200)."),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> HistoryPage:
    largest = get_services(request).settings.server.max_history_page
    if limit is None:
        limit = min(50, largest)
    elif limit > largest:
        raise ApiError(
            400,
            f"limit: {limit} is more than {largest}, the largest page (server.max_history_page)",
            param="limit",
            code="limit_too_large",
        )
    page = get_services(request).history.list_images(q, limit=limit, offset=offset)
    return HistoryPage(
        items=[_history_image(record, request) for record in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        query=q,
    )


@router.get(
    "/images/{image_id}",
    name="get_image",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The PNG, with its parameters embedded",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(400, 401, 404),
    },
)
def get_image(image_id: ImageId, request: Request) -> FileResponse:
    path = get_services(request).history.image_file(image_id)
    if path is None:
        raise ApiError(404, f"no image {image_id!r}", code="image_not_found", param="image_id")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


@router.delete("/images/{image_id}", response_model=Deleted, responses=error_responses(400, 401, 404))
def delete_image(image_id: ImageId, request: Request) -> Deleted:
    if not get_services(request).history.delete_image(image_id):
        raise ApiError(404, f"no image {image_id!r}", code="image_not_found", param="image_id")
    return Deleted(id=image_id)


def _history_image(record: ImageRecord, request: Request) -> HistoryImage:
    return HistoryImage(
        id=record.id,
        job_id=record.job_id,
        url=image_url(request, record.id),
        prompt=record.prompt,
        negative_prompt=record.negative_prompt,
        model=record.model,
        seed=record.seed,
        width=record.width,
        height=record.height,
        created_at=record.created_at,
        parameters=record.metadata,
    )
