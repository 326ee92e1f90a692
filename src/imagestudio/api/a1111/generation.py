"""An AUTOMATIC1111-compatible API under ``/sdapi/v1``: the tools that drive A1111 work unchanged.

Open WebUI's AUTOMATIC1111 engine, SillyTavern's "SD WebUI" source, LibreChat's Stable Diffusion tool
and the many scripts written against A1111's API call ``txt2img``/``img2img`` and a handful of listing
routes. Their requests go through the same typed requests, queue, history and PNG metadata as every
other entry point; only the shapes here are A1111's.

What these models cannot use is accepted rather than refused, because these clients always send it
(``cfg_scale: 7``, ``sampler_name: "Euler a"``, ``hr_*``, ``override_settings`` …): it is recorded in
the image's metadata under ``client`` and otherwise ignored. Sizes that are not multiples of
16 (A1111 takes any multiple of 8; SillyTavern any number) are rounded to the nearest multiple and
the requested size is recorded. Errors come in A1111's shape, ``{"error", "detail", "body",
"errors"}``, with one readable line in ``detail``. The listings, ``progress`` and ``interrupt`` are in
:mod:`imagestudio.api.a1111.status`.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from imagestudio.api.a1111.shape import SAMPLER, a1111_responses, a1111_router
from imagestudio.api.a1111.state import cached_model_hash, sdapi_state, selected_checkpoint
from imagestudio.api.common import build_generate_request, get_services, require_available, wait_for_result
from imagestudio.api.errors import ApiError
from imagestudio.api.prompt_loras import take_lora_tags
from imagestudio.errors import InvalidRequest
from imagestudio.job_requests import MAX_COUNT, MAX_SEED
from imagestudio.jobs.model import JobState
from imagestudio.registry import MODELS, ModelSpec

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.jobs.model import JobInfo
    from imagestudio.services import Services
    from imagestudio.storage.inputs import InputImage

#: Keys a client may put in the body that must never reach the metadata (SillyTavern sends its
#: connection settings, ``auth`` = "user:password", in the body it forwards).
_SECRET_KEYS = frozenset({"auth", "url", "api_key", "password", "token", "authorization"})
#: Longer strings (base64 images of ControlNet units, say) are noted, not stored.
_MAX_RECORDED_CHARS = 500


router = a1111_router()
_GENERATE_ERRORS = a1111_responses(400, 409, 429, 503, 504, 507)


# ----------------------------------------------------------------------------- request bodies


class _A1111Body(BaseModel):
    # Everything else a client sends is kept (model_extra) and recorded, never refused.
    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str | None = None
    seed: int | None = -1
    steps: int | None = Field(None, ge=1)
    width: int | None = Field(None, ge=1)
    height: int | None = Field(None, ge=1)
    batch_size: int = Field(1, ge=1)
    n_iter: int = Field(1, ge=1)
    cfg_scale: float | None = None
    sampler_name: str | None = None
    override_settings: dict[str, Any] | None = None
    send_images: bool = True


class Txt2ImgBody(_A1111Body):
    """``POST /sdapi/v1/txt2img``: A1111's StableDiffusionTxt2ImgProcessingAPI, leniently."""


class Img2ImgBody(_A1111Body):
    """``POST /sdapi/v1/img2img``: init images (base64), an optional mask (white = repaint)."""

    init_images: list[str] = Field(default_factory=list)
    mask: str | None = None
    denoising_strength: float | None = None
    inpainting_mask_invert: int = 0


class OptionsBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    sd_model_checkpoint: str | None = None


# ----------------------------------------------------------------------------- helpers


def checkpoint_id(title: str) -> str:
    """A checkpoint title as clients send it back (``"z-image-turbo"``, ``"z-image-turbo [abc123]"``,
    ``"z-image-turbo.safetensors"``) → the model id; 400 naming the valid ones if unknown."""
    name = title.strip()
    if name.endswith("]") and " [" in name:
        name = name[: name.rindex(" [")]
    name = name.removesuffix(".safetensors").removesuffix(".ckpt")
    if name not in MODELS:
        raise InvalidRequest(
            f"sd_model_checkpoint {title!r} is not a model here; valid: {', '.join(MODELS)}",
            param="sd_model_checkpoint",
        )
    return name


def _selected_model(request: Request, body: _A1111Body) -> ModelSpec:
    override = (body.override_settings or {}).get("sd_model_checkpoint")
    chosen = override or selected_checkpoint(request)
    return MODELS[checkpoint_id(str(chosen))]


def nearest_size(value: int | None, multiple: int) -> int | None:
    """The nearest multiple of ``multiple`` (at least one multiple); None stays None (= default)."""
    if value is None:
        return None
    return max(multiple, (value + multiple // 2) // multiple * multiple)


def recorded_fields(body: _A1111Body, consumed: set[str]) -> dict[str, Any]:
    """What the client sent beyond what was used, safe to store: no credentials, no long strings."""

    def clean(value: Any) -> Any:
        if isinstance(value, str) and len(value) > _MAX_RECORDED_CHARS:
            return f"<{len(value)} characters not recorded>"
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items() if str(k).lower() not in _SECRET_KEYS}
        if isinstance(value, list):
            return [clean(v) for v in value[:50]]
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        return str(value)

    sent = body.model_dump(exclude_unset=True)
    return {
        key: clean(value)
        for key, value in sent.items()
        if key not in consumed and key.lower() not in _SECRET_KEYS
    }


def _common_fields(
    settings: Settings, body: _A1111Body, spec: ModelSpec
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The typed request's fields from an A1111 body, and what to record beside them."""
    count = body.batch_size * body.n_iter
    if count > MAX_COUNT:
        raise InvalidRequest(
            f"batch_size x n_iter = {body.batch_size} x {body.n_iter} = {count} images; at most "
            f"{MAX_COUNT} per request",
            param="batch_size",
        )
    multiple = spec.size_multiple
    width, height = nearest_size(body.width, multiple), nearest_size(body.height, multiple)
    extra: dict[str, Any] = {}
    if (width, height) != (body.width, body.height):
        extra["requested_size"] = f"{body.width}x{body.height}"
    seed = body.seed if body.seed is not None and body.seed >= 0 else None
    prompt, loras = take_lora_tags(body.prompt, settings.storage.loras_dir)
    fields = {
        "model": spec.id,
        "prompt": prompt,
        "loras": loras,
        "width": width,
        "height": height,
        "steps": body.steps,
        "seed": seed,
        "count": count,
    }
    return fields, extra


def _submit_generate(services: Services, body: _A1111Body, spec: ModelSpec) -> JobInfo:
    fields, extra = _common_fields(services.settings, body, spec)
    consumed = {"prompt", "seed", "steps", "width", "height", "batch_size", "n_iter", "send_images"}
    if spec.fixed_guidance is None:
        fields["guidance_scale"] = body.cfg_scale
        fields["negative_prompt"] = body.negative_prompt or None
        consumed |= {"cfg_scale", "negative_prompt"}
    client = {**recorded_fields(body, consumed), **extra}
    request = build_generate_request(services.settings, **fields, client=client or None)
    return services.queue.submit(request)


def _submit_image(
    services: Services,
    body: Img2ImgBody,
    spec: ModelSpec,
    images: list[InputImage],
    mask: InputImage | None,
) -> JobInfo:
    """img2img through the one image-request builder: a Qwen model edits, a Z-Image model reworks or
    (with a mask) inpaints; the same rules as the CLI, the studio and the OpenAI edits route."""
    from imagestudio.job_requests import build_image_request

    if (body.width is None) != (body.height is None):
        raise InvalidRequest("give both width and height, or neither", param="width")
    fields, extra = _common_fields(services.settings, body, spec)
    fields.pop("model")
    prompt = fields.pop("prompt")
    consumed = {"prompt", "seed", "steps", "width", "height", "batch_size", "n_iter", "send_images"}
    consumed |= {"init_images", "mask", "inpainting_mask_invert"}
    if spec.is_edit:
        fields["negative_prompt"] = body.negative_prompt or None
        consumed.add("negative_prompt")
    else:
        fields["strength"] = body.denoising_strength
        consumed.add("denoising_strength")
        if spec.fixed_guidance is None:
            fields["guidance_scale"] = body.cfg_scale
            fields["negative_prompt"] = body.negative_prompt or None
            consumed |= {"cfg_scale", "negative_prompt"}
    client = {**recorded_fields(body, consumed), **extra}
    request = build_image_request(
        services.settings,
        model=spec.id,
        prompt=prompt,
        images=images,
        mask=mask,
        client=client or None,
        **fields,
    )
    require_available(spec.id, services.settings)
    return services.queue.submit(request)


async def _respond(request: Request, body: _A1111Body, spec: ModelSpec, info: JobInfo) -> dict[str, Any]:
    """A1111's response: base64 PNGs (no data: prefix), the parameters, and ``info`` as a JSON string."""
    from imagestudio.storage.metadata import read_metadata, read_parameters

    def load() -> tuple[list[str], list[str], list[dict[str, Any]]]:
        images, texts, metas = [], [], []
        for image in info.images:
            if image.path is None or not Path(image.path).is_file():
                raise ApiError(500, "a result image is missing on disk", type="server_error")
            path = Path(image.path)
            if body.send_images:
                images.append(base64.b64encode(path.read_bytes()).decode("ascii"))
            texts.append(read_parameters(path) or "")
            metas.append(read_metadata(path))
        return images, texts, metas

    interrupted = info.state is JobState.CANCELLED
    if not info.images and not interrupted:
        raise ApiError(500, "the job finished without images", type="server_error")
    images, infotexts, metas = await run_in_threadpool(load)
    # A stopped job saved nothing: the answer describes what was asked (A1111 sends its partial picture).
    first = metas[0] if metas else info.request
    asked = info.request
    seeds = [image.seed for image in info.images] or [
        (int(asked.get("seed") or 0) + i) % (MAX_SEED + 1) for i in range(int(asked.get("count") or 1))
    ]
    negative = body.negative_prompt or ""
    details: dict[str, Any] = {
        "prompt": body.prompt,
        "all_prompts": [body.prompt] * len(seeds),
        "negative_prompt": negative,
        "all_negative_prompts": [negative] * len(seeds),
        "seed": seeds[0],
        "all_seeds": seeds,
        "subseed": -1,
        "all_subseeds": [-1] * len(seeds),
        "subseed_strength": 0,
        "width": info.images[0].width if info.images else asked.get("width"),
        "height": info.images[0].height if info.images else asked.get("height"),
        "sampler_name": SAMPLER,
        "cfg_scale": first.get("true_cfg_scale", first.get("guidance_scale")),
        "steps": first.get("steps"),
        "batch_size": body.batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": spec.id,
        "sd_model_hash": first.get("model_hash"),
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": first.get("strength"),
        "extra_generation_params": {},
        "index_of_first_image": 0,
        "infotexts": infotexts,
        "styles": [],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(info.created_at)),
        "clip_skip": 1,
        "is_using_inpainting_conditioning": False,
        "version": f"imagestudio {first.get('app_version', '')}".strip(),
        "image_ids": [image.id for image in info.images],
        "interrupted": interrupted,
    }
    parameters = recorded_fields(body, {"init_images", "mask"})
    return {"images": images, "parameters": parameters, "info": json.dumps(details, ensure_ascii=False)}


# ----------------------------------------------------------------------------- generation routes


@router.post("/txt2img", summary="Text to image (A1111 txt2img)", responses=_GENERATE_ERRORS)
async def txt2img(body: Txt2ImgBody, request: Request) -> dict[str, Any]:
    services = get_services(request)
    spec = _selected_model(request, body)
    if spec.is_edit:
        raise InvalidRequest(
            f"{spec.id} edits images: call /sdapi/v1/img2img with init_images, or set "
            "sd_model_checkpoint to a text-to-image model",
            param="sd_model_checkpoint",
        )
    job = await run_in_threadpool(_submit_generate, services, body, spec)
    return await _respond(request, body, spec, await _finished(services, job.id, request))


@router.post(
    "/img2img",
    summary="Rework, inpaint (Z-Image) or edit (Qwen) images (A1111 img2img)",
    responses=_GENERATE_ERRORS,
)
async def img2img(body: Img2ImgBody, request: Request) -> dict[str, Any]:
    services = get_services(request)
    spec = _selected_model(request, body)
    images, mask = await _decode_inputs(request, services, body, spec)
    job = await run_in_threadpool(_submit_image, services, body, spec, images, mask)
    return await _respond(request, body, spec, await _finished(services, job.id, request))


async def _finished(services: Services, job_id: str, request: Request) -> JobInfo:
    """The job once it ended; an interrupted (cancelled) one is an answer too, as in A1111, where
    ``interrupt`` makes the waiting call return 200 with what it had (webuiapi raises on anything else)."""
    try:
        return await wait_for_result(services, job_id, request)
    except ApiError as exc:
        if exc.code != "job_cancelled":
            raise
        info = services.queue.get(job_id) or services.history.get_job(job_id)
        if info is None:
            raise
        return info


async def _decode_inputs(
    request: Request, services: Services, body: Img2ImgBody, spec: ModelSpec
) -> tuple[list[InputImage], InputImage | None]:
    """The init images and the mask, with the shared upload decoder (off the event loop, bounded)."""
    from dataclasses import replace

    from PIL import ImageOps

    from imagestudio.api.uploads import base64_upload, decode_upload, decode_uploads

    allowed = spec.max_input_images if spec.is_edit else 1
    if not 1 <= len(body.init_images) <= allowed:
        raise InvalidRequest(
            f"{len(body.init_images)} init_images given; {spec.id} takes "
            + (f"1 to {allowed}" if allowed > 1 else "exactly 1"),
            param="init_images",
        )
    uploads = [base64_upload(text, field=f"init_images[{i}]") for i, text in enumerate(body.init_images)]
    images = await decode_uploads(request, uploads, services.settings)
    if not body.mask:
        return images, None
    mask = await decode_upload(
        request, base64_upload(body.mask, field="mask"), services.settings, purpose="mask"
    )
    # A1111: white repaints (the studio's convention too); "inpainting_mask_invert: 1" makes black repaint.
    if body.inpainting_mask_invert:
        mask = replace(mask, image=ImageOps.invert(mask.image.convert("L")))
    return images, mask


# ----------------------------------------------------------------------------- the selected checkpoint


@router.get("/options", summary="Settings A1111 clients read (the selected checkpoint)")
def get_options(request: Request) -> dict[str, Any]:
    spec = MODELS[checkpoint_id(selected_checkpoint(request))]
    return {
        "sd_model_checkpoint": spec.id,
        "sd_checkpoint_hash": cached_model_hash(request, spec),
        "samples_format": "png",
        "sd_vae": "Automatic",
        "CLIP_stop_at_last_layers": 1,
        "eta_noise_seed_delta": 0,
    }


@router.post(
    "/options",
    summary="Select the checkpoint later A1111 calls use; other keys are ignored",
    responses=a1111_responses(400, 503),
)
def set_options(body: OptionsBody, request: Request) -> None:
    # Open WebUI posts back the whole options object it read, so unknown keys must be fine.
    if body.sd_model_checkpoint:
        model_id = checkpoint_id(body.sd_model_checkpoint)
        require_available(model_id, get_services(request).settings)
        sdapi_state(request).choose(model_id)
