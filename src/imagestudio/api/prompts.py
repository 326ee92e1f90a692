"""``POST /api/prompts/enhance``: *Improve prompt* over HTTP.

The rewrite is a job of kind ``enhance`` on the shared queue (it takes its turn with image jobs on the
one worker that owns the accelerator); the route waits for it like the OpenAI-compatible routes do, and a
client that hangs up has its job cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from imagestudio.api.common import get_services, require_available, wait_for_result
from imagestudio.api.errors import ApiError, error_responses
from imagestudio.job_requests import MAX_ENHANCE_TOKENS, MAX_PROMPT_CHARS, MAX_SEED

if TYPE_CHECKING:
    from imagestudio.jobs.model import JobInfo

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


class EnhanceBody(BaseModel):
    """A prompt to rewrite with a model's own text encoder (no download, no cloud key)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="The user's short prompt.")
    model: str | None = Field(
        None,
        description="The model whose text encoder rewrites: a text-to-image model writes a detailed "
        "description, an edit model a precise instruction; default z-image-turbo.",
    )
    images: list[str] | None = Field(
        None,
        max_length=3,
        description="Edit models only: the pictures (base64, data: URLs too) the instruction is about.",
    )
    language: Literal["auto", "en", "ru"] | None = Field(
        None, description="The answer's language; auto (default) = the prompt's."
    )
    # Strict, as every integer of the API's bodies (api/schemas.py): true or "7" is a 400, not a seed.
    seed: StrictInt | None = Field(None, ge=0, le=MAX_SEED, description="Sampling seed; random if absent.")
    max_new_tokens: StrictInt | None = Field(None, ge=16, le=MAX_ENHANCE_TOKENS, description="Token budget.")
    weights: str | None = Field(
        None, max_length=40, description="Weight variant whose text encoder rewrites; auto (the config's)."
    )


class EnhanceResponse(BaseModel):
    prompt: str = Field(description="The rewritten prompt (the original when the rewrite was unusable).")
    original_prompt: str
    model: str
    seconds: float
    language: Literal["en", "ru"]
    warning: str | None = Field(
        None, description="enhance_unusable: the model's answer was unusable; prompt is the original."
    )


@router.post(
    "/enhance",
    response_model=EnhanceResponse,
    responses=error_responses(400, 401, 409, 413, 429, 503, 504, 507),
    summary="Rewrite a short prompt into a detailed one with a local model",
)
async def enhance_prompt(body: Annotated[EnhanceBody, Body()], request: Request) -> EnhanceResponse:
    services = get_services(request)

    from imagestudio.api.uploads import base64_upload, decode_uploads

    # The shared upload decoder: off the event loop, bounded, the same rules as every other entry point.
    uploads = [base64_upload(text, field=f"images[{i}]") for i, text in enumerate(body.images or [])]
    images = tuple(await decode_uploads(request, uploads, services.settings))

    def submit() -> JobInfo:
        from imagestudio.job_requests import EnhanceRequest
        from imagestudio.registry import DEFAULT_GENERATE_MODEL

        enhance = EnhanceRequest.build(
            prompt=body.prompt,
            model=body.model or DEFAULT_GENERATE_MODEL,
            images=images,
            language=body.language,
            seed=body.seed,
            max_new_tokens=body.max_new_tokens,
            weights=body.weights,
        ).resolved(services.settings)
        require_available(enhance.model, services.settings)
        return services.queue.submit(enhance)

    job = await run_in_threadpool(submit)
    info = await wait_for_result(services, job.id, request)
    details = await run_in_threadpool(services.history.job_details, info.id)
    enhanced = ((details or {}).get("extra") or {}).get("enhanced")
    if enhanced is None:
        raise ApiError(500, "the rewrite finished without a result", type="server_error")
    return EnhanceResponse(
        prompt=enhanced["prompt"],
        original_prompt=enhanced["original_prompt"],
        model=enhanced["model"],
        seconds=enhanced["seconds"],
        language=enhanced["language"],
        warning=enhanced.get("warning"),
    )
