"""A1111's Extras tab over HTTP: ``POST /sdapi/v1/extra-single-image`` enlarges one picture.

The picture becomes an ``upscale`` job on the shared queue (same limits, history and metadata as the
CLI's ``imagestudio upscale``). A1111 names upscalers by their display names ("R-ESRGAN 4x+",
"Latent", "None" …): a name this server knows (an upscaler id or title) is used, any other means the
configured default and is recorded, as every A1111 field these models cannot use is.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from imagestudio.api.a1111.shape import a1111_responses, a1111_router
from imagestudio.api.common import get_services, wait_for_result
from imagestudio.api.errors import ApiError
from imagestudio.api.uploads import base64_upload, decode_upload
from imagestudio.job_requests import MAX_UPSCALE
from imagestudio.registry import UPSCALERS

router = a1111_router()


def upscaler_from_name(name: str | None) -> str | None:
    """The upscaler an A1111 client means by ``name`` (an id or a title here); None: the default."""
    if not name:
        return None
    wanted = name.strip().lower()
    for spec in UPSCALERS.values():
        if wanted in (spec.id.lower(), spec.title.lower()):
            return spec.id
    return None


class ExtraSingleImageBody(BaseModel):
    """A1111's ExtrasSingleImageRequest, leniently (face restoration and the rest are recorded, unused)."""

    model_config = ConfigDict(extra="allow")

    image: str = Field(description="The picture as base64 (a data: URL too).")
    resize_mode: int = Field(0, description="0: scale by upscaling_resize; 1: to upscaling_resize_w x h.")
    upscaling_resize: float = Field(2.0, ge=1.0, le=MAX_UPSCALE)
    upscaling_resize_w: int | None = Field(None, ge=1)
    upscaling_resize_h: int | None = Field(None, ge=1)
    upscaler_1: str | None = None


@router.post(
    "/extra-single-image",
    summary="Upscale one picture (A1111 extras)",
    responses=a1111_responses(400, 429, 503, 504, 507),
)
async def extra_single_image(body: ExtraSingleImageBody, request: Request) -> dict[str, Any]:
    from imagestudio.job_requests import build_upscale_request
    from imagestudio.storage.metadata import read_parameters

    services = get_services(request)
    picture = await decode_upload(request, base64_upload(body.image, field="image"), services.settings)
    scale = body.upscaling_resize
    if body.resize_mode == 1 and body.upscaling_resize_w:
        # "Scale to" a width: the factor that reaches it (the aspect is kept, as this upscaler does).
        scale = body.upscaling_resize_w / picture.width
    recorded = body.model_dump(exclude={"image"}, exclude_unset=True)

    def submit() -> Any:
        built = build_upscale_request(
            services.settings,
            picture,
            upscaler=upscaler_from_name(body.upscaler_1),
            scale=scale,
            client=recorded or None,
        )
        return services.queue.submit(built)

    job = await run_in_threadpool(submit)
    info = await wait_for_result(services, job.id, request)
    if not info.images or info.images[0].path is None:
        raise ApiError(500, "the job finished without an image", type="server_error")
    path = Path(info.images[0].path)

    def load() -> tuple[str, str]:
        return base64.b64encode(path.read_bytes()).decode("ascii"), read_parameters(path) or ""

    image, parameters = await run_in_threadpool(load)
    return {"html_info": f"<p>{parameters}</p>", "image": image}
