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
:mod:`imagestudio.api.sdapi_status`.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from imagestudio.api.common import build_generate_request, get_services, require_available, wait_for_result
from imagestudio.api.errors import ApiError, error_responses
from imagestudio.api.prompt_loras import take_lora_tags
from imagestudio.errors import InvalidRequest, QueueFull, UserError
from imagestudio.jobs.model import JobState
from imagestudio.quoting import clip_message
from imagestudio.registry import MODELS, ModelSpec
from imagestudio.requests import MAX_COUNT, MAX_SEED

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.config import Settings
    from imagestudio.jobs.model import JobEvent, JobInfo
    from imagestudio.services import Services
    from imagestudio.storage.inputs import InputImage

log = logging.getLogger(__name__)

PREFIX = "/sdapi/v1"
#: What A1111 calls the one sampler these flow-matching models use.
SAMPLER = "Euler"
#: Keys a client may put in the body that must never reach the metadata (SillyTavern sends its
#: connection settings, ``auth`` = "user:password", in the body it forwards).
_SECRET_KEYS = frozenset({"auth", "url", "api_key", "password", "token", "authorization"})
#: Longer strings (base64 images of ControlNet units, say) are noted, not stored.
_MAX_RECORDED_CHARS = 500


# ----------------------------------------------------------------------------- errors, in A1111's shape


#: Statuses answered in A1111's shape; 401 and 413 (the middlewares) and 500 (bugs) keep the app's.
_A1111_STATUSES = frozenset({400, 409, 429, 503, 504})


class A1111Error(BaseModel):
    """AUTOMATIC1111's error body."""

    error: str = Field(description="The kind of error (an exception class name in A1111).")
    detail: str = Field(description="One readable line saying what is wrong and what is allowed.")
    body: str = ""
    errors: str = Field(description="The same line again (A1111 puts the exception's text here).")


def a1111_router() -> APIRouter:
    """A router for ``/sdapi/v1`` whose routes answer errors in A1111's shape."""
    return APIRouter(
        prefix=PREFIX,
        tags=["AUTOMATIC1111-compatible"],
        route_class=A1111Route,
        responses=error_responses(401),
    )


def a1111_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route: A1111-shaped statuses, then the app's (401, 413, 500)."""
    described = {
        400: "Invalid request (a field, size, image, prompt or checkpoint name)",
        409: "The client went away; its job was cancelled",
        429: "Queue full; retry after the Retry-After header's seconds",
        503: "Model not on this machine, or the server is stopping",
        504: "The job did not finish within server.request_timeout_s and was cancelled",
        507: "Out of memory under every memory plan tried, or the outputs disk is full",
    }
    responses: dict[int | str, dict[str, Any]] = error_responses(401, 413)
    for status in statuses:
        responses[status] = {"model": A1111Error, "description": described[status]}
    return responses


def a1111_error(
    status: int, message: str, kind: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A1111's error body: ``error`` is the exception's class name, ``detail`` the message."""
    message = clip_message(message)
    body = {"error": kind, "detail": message, "body": "", "errors": message}
    return JSONResponse(body, status_code=status, headers=headers)


class A1111Route(APIRoute):
    """Routes whose errors (bad input, a busy queue, a failed job) answer in A1111's shape.

    Bugs still reach the app's handler (a generic 500, details only in the log).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except UserError as exc:
                if exc.http_status not in _A1111_STATUSES:
                    raise
                headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, QueueFull) else None
                return a1111_error(exc.http_status, exc.message, type(exc).__name__, headers)
            except ApiError as exc:
                if exc.status_code not in _A1111_STATUSES:
                    raise
                return a1111_error(exc.status_code, exc.message, type(exc).__name__, exc.headers)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
                message = f"{where}: {first.get('msg', 'invalid request')}"
                return a1111_error(400, message, "RequestValidationError")
            except StarletteHTTPException as exc:
                if exc.status_code not in _A1111_STATUSES:
                    raise
                return a1111_error(exc.status_code, str(exc.detail), "HTTPException", exc.headers)

        return route


router = a1111_router()
_GENERATE_ERRORS = a1111_responses(400, 409, 429, 503, 504, 507)


# ----------------------------------------------------------------------------- server state


#: The A1111 options a client set that outlive the server (the selected checkpoint), beside the history.
OPTIONS_FILE = "a1111-options.json"


@dataclass
class SdapiState:
    """What A1111 keeps between calls: the selected checkpoint and the live preview of the running job.

    One per app (on ``app.state.sdapi``); the preview arrives from the queue's event stream. A client's
    checkpoint is kept in ``options_file`` (A1111 keeps it in its config too): a restart must not send a
    client that chose a model back to a default it may not have.
    """

    checkpoint: str | None = None
    options_file: Path | None = None
    _preview: Image.Image | None = field(default=None, repr=False)
    _preview_job: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_event(self, event: JobEvent) -> None:
        # Called with the queue's lock held: only store a reference, never encode here.
        if event.type == "step" and event.preview is not None:
            with self._lock:
                self._preview, self._preview_job = event.preview, event.job_id
        elif event.terminal:
            with self._lock:
                if self._preview_job == event.job_id:
                    self._preview, self._preview_job = None, None

    def preview(self, job_id: str) -> Image.Image | None:
        with self._lock:
            return self._preview if self._preview_job == job_id else None

    @classmethod
    def load(cls, options_file: Path) -> SdapiState:
        """The state with the checkpoint a client chose before; an unreadable file is a warning."""
        checkpoint = None
        try:
            saved = json.loads(options_file.read_text(encoding="utf-8"))
            chosen = saved.get("sd_model_checkpoint") if isinstance(saved, dict) else None
            checkpoint = chosen if isinstance(chosen, str) and chosen in MODELS else None
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s (the A1111 checkpoint starts as the default): %s", options_file, exc)
        return cls(checkpoint=checkpoint, options_file=options_file)

    def choose(self, model_id: str) -> None:
        """Select ``model_id`` for later calls and keep the choice for the next start."""
        from imagestudio.storage.files import atomic_write_text

        self.checkpoint = model_id
        if self.options_file is not None:
            atomic_write_text(self.options_file, json.dumps({"sd_model_checkpoint": model_id}) + "\n")


def install(app: FastAPI, services: Services) -> None:
    """Add the routes and their state to ``app``; the preview follows every job of ``services``."""
    from imagestudio.api import sdapi_status

    state = SdapiState.load(services.settings.history_db.parent / OPTIONS_FILE)
    app.state.sdapi = state
    services.queue.subscribe(None, state.on_event)
    app.include_router(router)
    app.include_router(sdapi_status.router)


def sdapi_state(request: Request) -> SdapiState:
    return request.app.state.sdapi


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


def selected_checkpoint(request: Request) -> str:
    """The checkpoint a client chose, else the server's generate model (``server.auto_generate_model``)."""
    return sdapi_state(request).checkpoint or get_services(request).settings.server.auto_generate_model


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
    from imagestudio.requests import build_image_request

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


def cached_model_hash(request: Request, spec: ModelSpec) -> str | None:
    """The model hash if it was computed already (a listing never reads gigabytes)."""
    from imagestudio.models.locate import find_model_dir
    from imagestudio.storage.hashes import MODEL_HASH_CHARS, transformer_files

    services = get_services(request)
    folder = find_model_dir(spec, services.settings, build_tiny=False)
    files = transformer_files(folder) if folder is not None else []
    digest = services.studio.hash_cache.cached(files) if files else None
    return digest[:MODEL_HASH_CHARS] if digest else None
