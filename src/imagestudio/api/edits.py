"""Edit requests at the HTTP edge: multipart (OpenAI's ``/v1/images/edits``) or base64 JSON (``/api/jobs``).

Thin adapters only. The fields are renamed from OpenAI's (``image``/``image[]``, ``n``, ``size``), the
uploads are decoded by the same function as every other input image (off the event loop, see
:mod:`imagestudio.api.uploads`), the mask is read in OpenAI's convention (transparent = repaint), and the
model is chosen (``auto`` / aliases, see :mod:`imagestudio.api.model_choice`). Everything else — edit,
img2img or inpaint, image counts, mask aspect, option bounds — is decided by
:func:`imagestudio.job_requests.build_image_request`, the builder the CLI and the UI use too. Its errors keep
their ``code`` and ``details``; only ``param`` is renamed to the field the client sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from imagestudio.api.common import get_services, parse_size, require_available
from imagestudio.api.model_choice import ModelChoice, Task, choose_model
from imagestudio.api.schemas import RECORDED_OPENAI_FIELDS, SIZE_PATTERN, ImageOptions
from imagestudio.api.uploads import Upload, base64_upload, decode_upload, decode_uploads
from imagestudio.errors import InvalidRequest
from imagestudio.job_requests import (
    MAX_COUNT,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    build_image_request,
    check_image_count,
)
from imagestudio.registry import get_model

if TYPE_CHECKING:
    from imagestudio.api.schemas import EditJobBody
    from imagestudio.job_requests import EditRequest, GenerateRequest
    from imagestudio.jobs.model import JobInfo

log = logging.getLogger(__name__)

#: The builder's field names → the API's, for an error's ``param``.
EDIT_PARAM_NAMES = {"images": "image", "width": "size", "height": "size", "count": "n"}


@dataclass
class EditFields:
    """An edit as the client sent it, before any image is decoded."""

    prompt: str
    images: list[Upload]
    mask: Upload | None = None
    model: str | None = None
    count: int | None = None
    width: int | None = None
    height: int | None = None
    #: Studio extensions (seed, steps, negative_prompt, guidance_scale, true_cfg_scale, strength).
    extensions: dict[str, Any] = field(default_factory=dict)
    options: ImageOptions = field(default_factory=ImageOptions)
    #: The field names the client used for images and the mask, for error messages.
    param_names: dict[str, str] = field(default_factory=lambda: dict(EDIT_PARAM_NAMES))


def renamed(exc: InvalidRequest, names: dict[str, str]) -> InvalidRequest:
    """``exc`` with ``param`` in the client's vocabulary; message, code and details kept."""
    if exc.param not in names:
        return exc
    return type(exc)(exc.message, param=names[exc.param], code=exc.code, details=exc.details)


def client_record(choice: ModelChoice, options: ImageOptions) -> dict[str, Any] | None:
    """What goes into the metadata's ``client`` block: the model name sent and the recorded-only fields."""
    record: dict[str, Any] = {}
    if choice.picked:
        record["model"] = choice.requested or "auto"
    for name in RECORDED_OPENAI_FIELDS:
        value = getattr(options, name)
        if value is not None:
            record[name] = value
    return record or None


def check_options(options: ImageOptions, *, where: str) -> None:
    """Refuse what cannot be honoured; log (never refuse) fields nobody here knows."""
    if options.background == "transparent":
        raise InvalidRequest(
            "background 'transparent' is not possible: these models make opaque images; "
            "use 'opaque' or 'auto'",
            param="background",
        )
    unknown = sorted(options.model_extra or {})
    if unknown:
        log.warning("%s: ignored unknown field(s) %s", where, ", ".join(unknown))


async def build_edit(
    request: Request, fields: EditFields
) -> tuple[EditRequest | GenerateRequest, ModelChoice]:
    """Decode the uploads, choose the model, build and resolve the request (raises one-line 4xx errors)."""
    services = get_services(request)
    settings = services.settings
    if not fields.prompt.strip():
        raise InvalidRequest("prompt is empty", param="prompt", code="prompt_empty")
    task: Task = "inpaint" if fields.mask is not None else "edit"
    choice = choose_model(settings, fields.model, task)
    try:
        spec = get_model(choice.model)
        if spec.is_edit and fields.mask is None:
            # A fourth image is refused before three are decoded.
            check_image_count(spec, len(fields.images))
    except InvalidRequest as exc:
        raise renamed(exc, fields.param_names) from None
    images = await decode_uploads(request, fields.images, settings)
    mask = (
        await decode_upload(request, fields.mask, settings, purpose="alpha_mask")
        if fields.mask is not None
        else None
    )

    def build() -> EditRequest | GenerateRequest:
        try:
            built = build_image_request(
                settings,
                model=choice.model,
                prompt=fields.prompt,
                images=images,
                mask=mask,
                count=fields.count,
                width=fields.width,
                height=fields.height,
                client=client_record(choice, fields.options),
                **fields.extensions,
            )
        except InvalidRequest as exc:
            raise renamed(exc, fields.param_names) from None
        require_available(built.model, settings)
        return built

    return await run_in_threadpool(build), choice


async def submit_edit(request: Request, fields: EditFields) -> tuple[JobInfo, ModelChoice]:
    """Build the edit and queue it: the one place an HTTP edit becomes a job."""
    built, choice = await build_edit(request, fields)
    return await run_in_threadpool(get_services(request).queue.submit, built), choice


def edit_fields_from_json(body: EditJobBody) -> EditFields:
    """The native JSON edit body (base64 images) as :class:`EditFields`."""
    extensions = body.model_dump(
        include={"negative_prompt", "steps", "guidance_scale", "true_cfg_scale", "strength", "seed"}
    )
    return EditFields(
        prompt=body.prompt,
        images=[base64_upload(text, field=f"images[{index}]") for index, text in enumerate(body.images)],
        mask=base64_upload(body.mask, field="mask") if body.mask is not None else None,
        model=body.model,
        count=body.count,
        width=body.width,
        height=body.height,
        extensions={k: v for k, v in extensions.items() if v is not None},
        param_names={"images": "images", "count": "count"},
    )


#: Multipart fields the edit form knows; anything else is logged and ignored (as in JSON bodies).
_FORM_FIELDS = frozenset(
    {"prompt", "image", "image[]", "mask", "model", "n", "size", "negative_prompt", "seed", "steps"}
    | {"guidance_scale", "true_cfg_scale", "strength"}
    | set(ImageOptions.model_fields)
)


async def edit_form(
    request: Request,
    prompt: Annotated[str, Form(min_length=1, max_length=MAX_PROMPT_CHARS, description="The instruction.")],
    image: Annotated[
        list[UploadFile] | None, File(description="Input images (PNG, JPEG, WebP); repeat the field.")
    ] = None,
    image_list: Annotated[
        list[UploadFile] | None, File(alias="image[]", description="Same as image, array-style name.")
    ] = None,
    mask: Annotated[
        UploadFile | None,
        File(description="Inpainting mask (Z-Image): transparent = repaint; same aspect as the image."),
    ] = None,
    model: Annotated[
        str | None, Form(description="Model id, or auto / an OpenAI name: picked by the task.")
    ] = None,
    n: Annotated[int | None, Form(ge=1, le=MAX_COUNT)] = None,
    size: Annotated[str | None, Form(pattern=SIZE_PATTERN, description="WIDTHxHEIGHT or auto.")] = None,
    negative_prompt: Annotated[str | None, Form(max_length=MAX_PROMPT_CHARS)] = None,
    seed: Annotated[int | None, Form(ge=0, le=MAX_SEED)] = None,
    steps: Annotated[int | None, Form(ge=1, le=200)] = None,
    guidance_scale: Annotated[float | None, Form()] = None,
    true_cfg_scale: Annotated[float | None, Form()] = None,
    strength: Annotated[float | None, Form()] = None,
    response_format: Annotated[str | None, Form()] = None,
    output_format: Annotated[str | None, Form()] = None,
    output_compression: Annotated[int | None, Form()] = None,
    background: Annotated[str | None, Form()] = None,
    quality: Annotated[str | None, Form()] = None,
    style: Annotated[str | None, Form()] = None,
    moderation: Annotated[str | None, Form()] = None,
    user: Annotated[str | None, Form()] = None,
    safety_identifier: Annotated[str | None, Form()] = None,
    input_fidelity: Annotated[str | None, Form()] = None,
    stream: Annotated[bool | None, Form()] = None,
    partial_images: Annotated[int | None, Form()] = None,
) -> EditFields:
    """The multipart edit form (OpenAI's field names plus extensions), read but not yet decoded."""
    from pydantic import ValidationError

    from imagestudio.job_requests import _first_error

    raw_options = {
        "response_format": response_format,
        "output_format": output_format,
        "output_compression": output_compression,
        "background": background,
        "quality": quality,
        "style": style,
        "moderation": moderation,
        "user": user,
        "safety_identifier": safety_identifier,
        "input_fidelity": input_fidelity,
        "stream": stream,
        "partial_images": partial_images,
    }
    form = await request.form()
    unknown = {key: "?" for key in form if key not in _FORM_FIELDS}
    try:
        options = ImageOptions.model_validate(
            {**{k: v for k, v in raw_options.items() if v is not None}, **unknown}
        )
    except ValidationError as exc:
        raise _first_error(exc) from None
    files = [*(image or []), *(image_list or [])]
    width, height = parse_size(size)
    extensions = {
        "negative_prompt": negative_prompt,
        "seed": seed,
        "steps": steps,
        "guidance_scale": guidance_scale,
        "true_cfg_scale": true_cfg_scale,
        "strength": strength,
    }
    return EditFields(
        prompt=prompt,
        images=[
            Upload(await upload.read(), field=f"image[{index}]", filename=upload.filename)
            for index, upload in enumerate(files)
        ],
        mask=Upload(await mask.read(), field="mask", filename=mask.filename) if mask is not None else None,
        model=model,
        count=n,
        width=width,
        height=height,
        extensions={k: v for k, v in extensions.items() if v is not None},
        options=options,
    )


EditForm = Annotated[EditFields, Depends(edit_form)]
