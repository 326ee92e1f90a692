"""Edit requests at the HTTP edge: multipart (OpenAI's ``/v1/images/edits``) or base64 JSON (``/api/jobs``).

Both become one validated :class:`EditUpload` (decoded images, the mask in the engine's convention,
the model resolved). :func:`submit_edit` is the single point where an upload becomes a queued job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, File, Form, Request, UploadFile

from imagestudio.api.common import get_services, parse_size, require_available
from imagestudio.api.schemas import SIZE_PATTERN
from imagestudio.api.uploads import decode_base64_image, decode_image
from imagestudio.errors import InvalidImage, InvalidRequest
from imagestudio.registry import DEFAULT_EDIT_MODEL, DEFAULT_GENERATE_MODEL, get_model
from imagestudio.requests import MAX_COUNT, MAX_PROMPT_CHARS, MAX_SEED, EditRequest, GenerateRequest
from imagestudio.storage.inputs import InputImage

if TYPE_CHECKING:
    from imagestudio.api.schemas import EditJobBody
    from imagestudio.config import Settings
    from imagestudio.jobs.model import JobInfo
    from imagestudio.services import Services

MAX_INPUT_IMAGES = 3


@dataclass(frozen=True)
class EditUpload:
    """A validated edit: what the edit engine needs, in its own conventions.

    ``task`` follows from the model and the mask: a Qwen edit model edits 1–3 images; a Z-Image
    model repaints the white part of ``mask`` (inpaint) or, without a mask, reworks the image
    (img2img). ``mask`` is single-channel, white = repaint (converted from OpenAI's
    transparent = edit).
    """

    model: str
    task: Literal["edit", "inpaint", "img2img"]
    prompt: str
    images: list[InputImage]
    mask: InputImage | None
    count: int
    width: int | None
    height: int | None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    true_cfg_scale: float | None = None
    strength: float | None = None
    seed: int | None = None


def submit_edit(services: Services, upload: EditUpload) -> JobInfo:
    """Queue an edit job: the one place an upload becomes a typed, resolved request.

    A Qwen edit model gets an :class:`EditRequest`; a Z-Image model gets a :class:`GenerateRequest`
    with the image as init image (img2img) and, with a mask, inpainting.
    """
    common = {
        "model": upload.model,
        "prompt": upload.prompt,
        "negative_prompt": upload.negative_prompt,
        "count": upload.count,
        "width": upload.width,
        "height": upload.height,
        "steps": upload.steps,
        "seed": upload.seed,
    }
    request: EditRequest | GenerateRequest
    if upload.task == "edit":
        if upload.guidance_scale is not None:
            raise InvalidRequest(
                f"guidance_scale does not apply to {upload.model}; use true_cfg_scale", param="guidance_scale"
            )
        if upload.strength is not None:
            raise InvalidRequest(f"strength does not apply to {upload.model}", param="strength")
        request = EditRequest.build(
            **common, images=tuple(upload.images), true_cfg_scale=upload.true_cfg_scale
        )
    else:
        if upload.true_cfg_scale is not None:
            raise InvalidRequest(
                f"true_cfg_scale does not apply to {upload.model}; it runs without guidance",
                param="true_cfg_scale",
            )
        request = GenerateRequest.build(
            **common,
            init_image=upload.images[0],
            mask=upload.mask,
            strength=upload.strength,
            guidance_scale=upload.guidance_scale,
        )
    return services.queue.submit(request.resolved(services.settings))


def build_edit_upload(
    settings: Settings,
    *,
    prompt: str,
    images: list[InputImage],
    mask: InputImage | None,
    model: str | None,
    count: int | None,
    size: str | None = None,
    width: int | None = None,
    height: int | None = None,
    **extensions: object,
) -> EditUpload:
    """Check everything an edit can be refused for, before any job is queued."""
    if not prompt.strip():
        raise InvalidRequest("prompt is empty", param="prompt")
    if not 1 <= len(images) <= MAX_INPUT_IMAGES:
        raise InvalidRequest(
            f"{len(images)} input images given; send 1 to {MAX_INPUT_IMAGES} (as image or image[])",
            param="image",
        )
    if size is not None:
        width, height = parse_size(size)
    if mask is not None:
        spec = get_model(model or DEFAULT_GENERATE_MODEL)
        if spec.is_edit:
            raise InvalidRequest(
                f"a mask means Z-Image inpainting, and {spec.id} is an edit model; leave the mask out "
                "to edit with it, or use a Z-Image model",
                param="mask",
            )
        if len(images) != 1:
            raise InvalidRequest("inpainting with a mask takes exactly one image", param="image")
        if (mask.width, mask.height) != (images[0].width, images[0].height):
            raise InvalidImage(
                f"mask is {mask.width}x{mask.height} but the image is {images[0].width}x"
                f"{images[0].height}; they must be the same size",
                param="mask",
            )
        task: Literal["edit", "inpaint", "img2img"] = "inpaint"
    else:
        spec = get_model(model or DEFAULT_EDIT_MODEL)
        if not spec.is_edit and len(images) != 1:
            raise InvalidRequest(
                f"{spec.id} reworks exactly one image (img2img); got {len(images)}", param="image"
            )
        task = "edit" if spec.is_edit else "img2img"
    require_available(spec.id, settings)
    return EditUpload(
        model=spec.id,
        task=task,
        prompt=prompt,
        images=images,
        mask=None if mask is None else repaint_mask(mask),
        count=count or 1,
        width=width,
        height=height,
        **extensions,  # type: ignore[arg-type]
    )


def repaint_mask(mask: InputImage) -> InputImage:
    """OpenAI's convention (fully transparent = edit) → the engine's (white = repaint), as mode "L".

    A mask without alpha is taken as already white = repaint.
    """
    from PIL import ImageOps

    if mask.image.mode == "RGBA":
        return replace(mask, image=ImageOps.invert(mask.image.getchannel("A")))
    return replace(mask, image=mask.image.convert("L"))


def edit_upload_from_json(body: EditJobBody, settings: Settings) -> EditUpload:
    limit = settings.server.max_upload_pixels
    images = [
        decode_base64_image(text, field=f"images[{index}]", max_pixels=limit)
        for index, text in enumerate(body.images)
    ]
    mask = (
        decode_base64_image(body.mask, field="mask", max_pixels=limit, keep_alpha=True)
        if body.mask is not None
        else None
    )
    return build_edit_upload(
        settings,
        prompt=body.prompt,
        images=images,
        mask=mask,
        model=body.model,
        count=body.count,
        width=body.width,
        height=body.height,
        negative_prompt=body.negative_prompt,
        steps=body.steps,
        guidance_scale=body.guidance_scale,
        true_cfg_scale=body.true_cfg_scale,
        strength=body.strength,
        seed=body.seed,
    )


async def edit_form(
    request: Request,
    prompt: Annotated[str, Form(min_length=1, max_length=MAX_PROMPT_CHARS, description="The instruction.")],
    image: Annotated[
        list[UploadFile] | None, File(description="1–3 input images (PNG, JPEG, WebP); repeat the field.")
    ] = None,
    image_list: Annotated[
        list[UploadFile] | None, File(alias="image[]", description="Same as image, array-style name.")
    ] = None,
    mask: Annotated[
        UploadFile | None, File(description="Inpainting mask (Z-Image): transparent = repaint, same size.")
    ] = None,
    model: Annotated[str | None, Form(description="Model id; default qwen-image-edit-2511.")] = None,
    n: Annotated[int | None, Form(ge=1, le=MAX_COUNT)] = None,
    size: Annotated[str | None, Form(pattern=SIZE_PATTERN, description="WIDTHxHEIGHT or auto.")] = None,
    response_format: Annotated[Literal["b64_json", "url"] | None, Form()] = None,
    negative_prompt: Annotated[str | None, Form(max_length=MAX_PROMPT_CHARS)] = None,
    seed: Annotated[int | None, Form(ge=0, le=MAX_SEED)] = None,
    steps: Annotated[int | None, Form(ge=1, le=200)] = None,
    guidance_scale: Annotated[float | None, Form(ge=0.0, le=30.0)] = None,
    true_cfg_scale: Annotated[float | None, Form(ge=0.0, le=30.0)] = None,
    strength: Annotated[float | None, Form(gt=0.0, le=1.0)] = None,
) -> tuple[EditUpload, str | None]:
    """The multipart edit form (OpenAI's field names plus extensions) → (upload, response_format)."""
    settings = get_services(request).settings
    limit = settings.server.max_upload_pixels
    files = [*(image or []), *(image_list or [])]
    if len(files) > MAX_INPUT_IMAGES:
        raise InvalidRequest(f"{len(files)} input images given; send 1 to {MAX_INPUT_IMAGES}", param="image")
    images = [
        decode_image(await upload.read(), field=f"image[{index}]", max_pixels=limit)
        for index, upload in enumerate(files)
    ]
    decoded_mask = (
        decode_image(await mask.read(), field="mask", max_pixels=limit, keep_alpha=True)
        if mask is not None
        else None
    )
    upload = build_edit_upload(
        settings,
        prompt=prompt,
        images=images,
        mask=decoded_mask,
        model=model,
        count=n,
        size=size,
        negative_prompt=negative_prompt,
        steps=steps,
        guidance_scale=guidance_scale,
        true_cfg_scale=true_cfg_scale,
        strength=strength,
        seed=seed,
    )
    return upload, response_format


EditForm = Annotated[tuple[EditUpload, Any], Depends(edit_form)]
