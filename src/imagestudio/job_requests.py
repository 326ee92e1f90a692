"""Typed requests: every entry point (CLI, UI, API) builds one of these and calls :meth:`resolved`.

``resolved`` fills the blanks from the registry and config and validates against the model's rules
*before* any model loads, raising a one-line :class:`~imagestudio.errors.InvalidRequest` naming the
field, the value and what is allowed.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, ValidationError

from imagestudio.errors import InvalidRequest
from imagestudio.lora_refs import LoraRef
from imagestudio.quoting import short_repr
from imagestudio.registry import (
    DEFAULT_EDIT_MODEL,
    DEFAULT_GENERATE_MODEL,
    LIGHTNING_TRUE_CFG,
    ModelSpec,
    get_model,
)
from imagestudio.storage.inputs import InputImage

if TYPE_CHECKING:
    from imagestudio.config import Settings

MAX_SEED = 2**32 - 1
MAX_COUNT = 16
MAX_PROMPT_CHARS = 4000


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def check_size(spec: ModelSpec, width: int, height: int) -> None:
    """Refuse sizes the model cannot make (Z-Image raises deep inside; Qwen edit silently rounds)."""
    for name, value in (("width", width), ("height", height)):
        if value % spec.size_multiple:
            lower = value // spec.size_multiple * spec.size_multiple
            raise InvalidRequest(
                f"{name} {value} is not a multiple of {spec.size_multiple} "
                f"(try {max(lower, spec.size_multiple)} or {lower + spec.size_multiple})",
                param=name,
                code="size_multiple",
                details={
                    "name": name,
                    "value": value,
                    "multiple": spec.size_multiple,
                    "lower": max(lower, spec.size_multiple),
                    "upper": lower + spec.size_multiple,
                },
            )
        if not spec.min_side <= value <= spec.max_side:
            raise InvalidRequest(
                f"{name} {value} is outside {spec.min_side}..{spec.max_side} for {spec.id}",
                param=name,
                code="size_range",
                details={
                    "name": name,
                    "value": value,
                    "min": spec.min_side,
                    "max": spec.max_side,
                    "model": spec.id,
                },
            )
    if width * height > spec.max_pixels:
        raise InvalidRequest(
            f"size {width}x{height} is {width * height:,} pixels; "
            f"{spec.id} allows at most {spec.max_pixels:,}",
            param="size",
            code="size_pixels",
            details={
                "width": width,
                "height": height,
                "pixels": f"{width * height:,}",
                "model": spec.id,
                "max": f"{spec.max_pixels:,}",
            },
        )


def check_steps(spec: ModelSpec, steps: int) -> None:
    if steps < spec.min_steps:
        raise InvalidRequest(
            f"steps {steps} is below {spec.min_steps}, the minimum for {spec.id}",
            param="steps",
            code="steps_min",
            details={"value": steps, "min": spec.min_steps, "model": spec.id},
        )


_Model = TypeVar("_Model", bound=BaseModel)


def _build(model: type[_Model], fields: dict[str, object]) -> _Model:
    """``model`` from loose input (None = not given); pydantic's errors become one :class:`InvalidRequest`."""
    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise _first_error(exc) from None


def _first_error(error: ValidationError) -> InvalidRequest:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "request"
    # The bounds pydantic checks get codes of their own so every edge can say them in its language.
    limit = next(iter((first.get("ctx") or {}).values()), None)
    code = {
        "greater_than_equal": "field_min",
        "less_than_equal": "field_max",
        "string_too_long": "field_too_long",
    }
    return InvalidRequest(
        f"{field} = {short_repr(first.get('input'))}: {first['msg']}",
        param=field,
        code=code.get(first["type"], "field_invalid") if limit is not None else "field_invalid",
        details={
            "field": field,
            "value": short_repr(first.get("input")),
            "reason": first["msg"],
            "limit": limit,
        },
    )


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    width: int | None = Field(None, ge=1)
    height: int | None = Field(None, ge=1)
    steps: int | None = Field(None, ge=1, le=200)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    count: int = Field(1, ge=1, le=MAX_COUNT)
    #: What a client asked for that is recorded but does not change the pixels: the model name it sent
    #: (``dall-e-3``, ``auto``), OpenAI fields these models have no use for (quality, style, user …) and
    #: an AUTOMATIC1111 client's ``cfg_scale``, ``sampler_name``, ``hr_*`` …: accepted so those clients
    #: work, and kept in the metadata so the record says what was asked as well as what was done.
    client: dict[str, Any] | None = None
    #: The user's own words when ``prompt`` is a rewrite by *Improve prompt* (kept in the metadata).
    original_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)

    @classmethod
    def build(cls: type[_Model], **fields: object) -> _Model:
        """Construct from loose input, turning pydantic's errors into one :class:`InvalidRequest`."""
        return _build(cls, fields)

    def _check_prompt(self) -> None:
        if not self.prompt.strip():
            raise InvalidRequest("prompt is empty", param="prompt", code="prompt_empty")

    def seeds(self) -> list[int]:
        """The seed of each image: seed, seed+1, … (wrapping at 2**32, as other tools do)."""
        assert self.seed is not None, "call resolved() first"
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.count)]


class GenerateRequest(_Request):
    """Text-to-image on a Z-Image model; with ``init_image`` img2img, and with ``mask`` too, inpainting.

    img2img/inpaint sizes: the output is ``width`` x ``height`` and the init image (and mask) are resized
    to it, stretching if the aspect differs (A1111's "just resize"); with no size given, the output takes
    the init image's size, scaled into the model's bounds and rounded to a multiple of 16.
    """

    model: str = DEFAULT_GENERATE_MODEL
    guidance_scale: float | None = Field(None, ge=0.0, le=30.0)
    init_image: InstanceOf[InputImage] | None = None
    #: White (>= 128 after greyscale) = repaint, black = keep.
    mask: InstanceOf[InputImage] | None = None
    #: How much of the init image is re-noised: 1.0 repaints fully; the run takes about strength x steps.
    strength: float | None = Field(None, gt=0.0, le=1.0)
    loras: tuple[LoraRef, ...] = ()
    #: Seed variety (0 = off): per-seed noise on the prompt embeddings, see engine/variety.py.
    variety: float = Field(0.0, ge=0.0, le=1.0)

    @property
    def mode(self) -> Literal["text-to-image", "img2img", "inpaint"]:
        if self.init_image is None:
            return "text-to-image"
        return "inpaint" if self.mask is not None else "img2img"

    def resolved(self, settings: Settings) -> GenerateRequest:
        """Every blank filled (registry, then config), every rule checked."""
        spec = get_model(self.model, task="text-to-image")
        self._check_prompt()
        gen = settings.generation
        image_fields = self._resolved_image_fields(spec)
        width = self.width or image_fields.get("width") or gen.default_width
        height = self.height or image_fields.get("height") or gen.default_height
        check_size(spec, width, height)
        guidance = self.guidance_scale
        if guidance is None:
            guidance = gen.default_guidance_scale if gen.default_guidance_scale is not None else 0.0
        if spec.fixed_guidance is not None and guidance != spec.fixed_guidance:
            raise InvalidRequest(
                f"guidance {guidance} is not allowed for {spec.id}: the Turbo model is distilled for "
                f"guidance {spec.fixed_guidance}; any other value runs CFG, doubles the time and "
                "degrades the image",
                param="guidance_scale",
                code="guidance_fixed",
                details={"value": guidance, "model": spec.id, "fixed": spec.fixed_guidance},
            )
        if spec.fixed_guidance is not None and (self.negative_prompt or "").strip():
            raise InvalidRequest(
                f"a negative prompt has no effect on {spec.id}: it runs without guidance",
                param="negative_prompt",
                code="negative_unused",
                details={"model": spec.id},
            )
        steps = self.steps or gen.default_num_inference_steps or spec.default_steps
        check_steps(spec, steps)
        strength = image_fields.get("strength")
        if strength is not None and denoising_steps(steps, strength) < 1:
            raise InvalidRequest(
                f"strength {strength} with {steps} steps runs no denoising step; use a strength of at "
                f"least {1 / steps:.3g} or more steps",
                param="strength",
                code="strength_no_steps",
                details={"strength": strength, "steps": steps, "min": f"{1 / steps:.3g}"},
            )
        return self.model_copy(
            update={
                "width": width,
                "height": height,
                "steps": steps,
                "guidance_scale": guidance,
                "seed": self.seed if self.seed is not None else random_seed(),
                "strength": strength,
            }
        )

    def _resolved_image_fields(self, spec: ModelSpec) -> dict[str, Any]:
        """Checks of init image / mask / strength; the default size and strength they imply."""
        if self.init_image is None:
            for name, value in (("mask", self.mask), ("strength", self.strength)):
                if value is not None:
                    raise InvalidRequest(
                        f"{name} needs an init image (--init-image)",
                        param=name,
                        code="needs_init_image",
                        details={"field": name},
                    )
            return {}
        if spec.default_strength is None:
            raise InvalidRequest(
                f"{spec.id} cannot start from an init image",
                param="init_image",
                code="no_init_image",
                details={"model": spec.id},
            )
        if (self.width is None) != (self.height is None):
            raise InvalidRequest(
                "give both width and height, or neither (the size then follows the init image)",
                param="width" if self.width is None else "height",
                code="size_both",
            )
        if self.mask is not None:
            check_mask(self.init_image, self.mask)
        default = spec.default_inpaint_strength if self.mask is not None else spec.default_strength
        fields: dict[str, Any] = {"strength": self.strength if self.strength is not None else default}
        if self.width is None:
            fields["width"], fields["height"] = fit_size(spec, self.init_image.width, self.init_image.height)
        return fields

    def denoising_steps(self) -> int:
        """Transformer steps that actually run (img2img/inpaint skip the first ``(1 - strength)`` part)."""
        assert self.steps is not None, "call resolved() first"
        return self.steps if self.strength is None else denoising_steps(self.steps, self.strength)

    def metadata_fields(self) -> dict[str, Any]:
        """JSON-safe fields for the PNG metadata (input images as name + hash, not pixels)."""
        fields = self.model_dump(exclude={"count", "init_image", "mask", "strength", "loras", "client"})
        if self.client:
            fields["client"] = dict(self.client)
        if self.init_image is not None:
            fields["mode"] = self.mode
            fields["init_image"] = self.init_image.metadata()
            fields["strength"] = self.strength
            fields["denoising_steps"] = self.denoising_steps()
            if self.mask is not None:
                fields["mask"] = self.mask.metadata()
        if self.loras:
            fields["loras"] = [lora.metadata() for lora in self.loras]
        return optional_fields(fields)


def optional_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Metadata without the optional features a job did not use (no improved prompt, variety off), so
    the metadata of ordinary images stays as it always was."""
    if fields.get("original_prompt") is None:
        fields.pop("original_prompt", None)
    if not fields.get("variety"):
        fields.pop("variety", None)
    return fields


def denoising_steps(steps: int, strength: float) -> int:
    """How many of ``steps`` an img2img/inpaint run with ``strength`` executes.

    The same arithmetic as diffusers' ``get_timesteps`` for the Z-Image img2img/inpaint pipelines: the
    schedule is built for ``steps`` and its first ``int(steps - steps * strength)`` steps are skipped.
    """
    return steps - int(max(steps - steps * strength, 0))


def check_mask(image: InputImage, mask: InputImage) -> None:
    """A mask must frame the same picture (same aspect, within 1 %) and mark something to repaint.

    A mask of another size but the same aspect is resized to the output size like the init image; a
    different aspect almost always means the wrong file, so it is refused rather than stretched.
    """
    image_aspect = image.width / image.height
    mask_aspect = mask.width / mask.height
    if abs(mask_aspect / image_aspect - 1) > 0.01:
        raise InvalidRequest(
            f"mask {mask.name!r} is {mask.width}x{mask.height} but the init image {image.name!r} is "
            f"{image.width}x{image.height}: their aspect ratios differ",
            param="mask",
            code="mask_aspect",
        )
    brightest = mask.image.getextrema()[1]
    # A mask is decoded to one band (L), whose extrema are two numbers, not one pair per band.
    assert not isinstance(brightest, tuple), f"mask in mode {mask.image.mode}"
    if brightest < 128:
        raise InvalidRequest(
            f"mask {mask.name!r} is all black: nothing to repaint (white marks the part to repaint)",
            param="mask",
            code="mask_empty",
        )


def fit_size(spec: ModelSpec, width: float, height: float, multiple: int | None = None) -> tuple[int, int]:
    """``width`` x ``height`` scaled (keeping the aspect) into the model's size bounds, sides rounded down to
    ``multiple`` (default: the model's); when the aspect cannot fit the bounds, the sides are clamped."""
    step = multiple or spec.size_multiple
    scale = min(1.0, math.sqrt(spec.max_pixels / (width * height)), spec.max_side / max(width, height))
    if min(width, height) * scale < spec.min_side:
        scale = spec.min_side / min(width, height)
    low = -(-spec.min_side // step) * step
    high = spec.max_side // step * step

    def side(value: float) -> int:
        return min(high, max(low, int(value * scale + 1e-6) // step * step))

    return side(width), side(height)


def default_edit_size(spec: ModelSpec, last_image: InputImage) -> tuple[int, int]:
    """The edit pipeline's own rule, computed up front: ``default_output_area`` at the last input image's
    aspect, each side rounded to a multiple of 32 (``calculate_dimensions`` in diffusers), then fitted into
    the model's bounds."""
    area = spec.default_output_area or 1024 * 1024
    ratio = last_image.width / last_image.height
    width = math.sqrt(area * ratio)
    height = width / ratio
    width, height = max(32, round(width / 32) * 32), max(32, round(height / 32) * 32)
    return fit_size(spec, width, height, multiple=32)


def check_image_count(spec: ModelSpec, count: int) -> None:
    """1 to ``spec.max_input_images`` input images (Qwen-Image-Edit-2511 is made for 1-3)."""
    if count < 1:
        raise InvalidRequest(
            f"{spec.id} needs at least one input image (-i IMAGE)", param="images", code="need_image"
        )
    if count > spec.max_input_images:
        raise InvalidRequest(
            f"{count} input images given; {spec.id} takes 1 to {spec.max_input_images} "
            "(refer to them as Picture 1, Picture 2… in the prompt)",
            param="images",
            code="too_many_images",
            details={"count": count, "max": spec.max_input_images},
        )


class EditRequest(_Request):
    """Edit 1-3 input images with an instruction on a Qwen-Image-Edit model.

    ``images`` are already opened and checked (:func:`imagestudio.storage.inputs.read_input_image`), so the
    CLI, the API and the UI share one decoding path. Without ``width``/``height`` the output follows the
    pipeline's rule (see :func:`default_edit_size`).
    """

    model: str = DEFAULT_EDIT_MODEL
    images: tuple[InstanceOf[InputImage], ...] = ()
    true_cfg_scale: float | None = Field(None, ge=1.0, le=20.0)
    #: Use the model's Lightning LoRA for 4 or 8 steps (sets steps and true CFG unless given).
    lightning: Literal[4, 8] | None = None
    loras: tuple[LoraRef, ...] = ()
    #: Pixel area each reference is encoded at (VAE / vision-language encoder); null = config, registry.
    reference_vae_area: int | None = Field(None, ge=32 * 32, le=2048 * 2048)
    reference_condition_area: int | None = Field(None, ge=32 * 32, le=2048 * 2048)

    def resolved(self, settings: Settings) -> EditRequest:
        """Every blank filled (registry, then config), every rule checked; no image is touched."""
        spec = get_model(self.model, task="edit")
        self._check_prompt()
        check_image_count(spec, len(self.images))
        if (self.width is None) != (self.height is None):
            raise InvalidRequest(
                "give both width and height, or neither (the size then follows the last input image)",
                param="width" if self.width is None else "height",
                code="size_both",
            )
        if self.width is None or self.height is None:
            width, height = default_edit_size(spec, self.images[-1])
        else:
            width, height = self.width, self.height
        check_size(spec, width, height)
        if self.lightning is not None and spec.lightning_file(self.lightning) is None:
            raise InvalidRequest(
                f"{spec.id} has no Lightning LoRA",
                param="lightning",
                code="no_lightning",
                details={"model": spec.id},
            )
        steps = self.steps or self.lightning or spec.default_steps
        check_steps(spec, steps)
        true_cfg = self.true_cfg_scale
        if true_cfg is None:
            true_cfg = LIGHTNING_TRUE_CFG if self.lightning else (spec.default_true_cfg or 1.0)
        negative = self.negative_prompt
        if true_cfg <= 1.0:
            # The pipeline only runs CFG when true_cfg > 1; a negative prompt would be silently ignored.
            if negative is not None and negative.strip():
                raise InvalidRequest(
                    f"a negative prompt has no effect at true CFG {true_cfg}; raise --true-cfg above 1 "
                    "(the Lightning LoRA is made for 1.0)",
                    param="negative_prompt",
                    code="negative_without_cfg",
                    details={"value": true_cfg},
                )
            negative = None
        elif negative is None:
            negative = spec.default_negative_prompt
        options = settings.model(spec.id)
        return self.model_copy(
            update={
                "width": width,
                "height": height,
                "steps": steps,
                "true_cfg_scale": true_cfg,
                "negative_prompt": negative,
                "seed": self.seed if self.seed is not None else random_seed(),
                "reference_vae_area": self.reference_vae_area
                or options.reference_vae_area
                or spec.reference_vae_area,
                "reference_condition_area": self.reference_condition_area
                or options.reference_condition_area
                or spec.reference_condition_area,
            }
        )

    def metadata_fields(self) -> dict[str, Any]:
        """JSON-safe fields for the PNG metadata: the inputs by name and SHA-256."""
        fields = self.model_dump(exclude={"count", "images", "loras", "client"})
        if self.client:
            fields["client"] = dict(self.client)
        fields["input_images"] = [image.metadata() for image in self.images]
        if self.loras:
            fields["loras"] = [lora.metadata() for lora in self.loras]
        return optional_fields(fields)


#: Token budget of a prompt rewrite: a 150-word paragraph is ~200 tokens in English, ~350 in Russian.
DEFAULT_ENHANCE_TOKENS = 384
MAX_ENHANCE_TOKENS = 1024
#: The offline tiny models write random tokens (quality needs the real model): a long random answer says
#: no more than a short one, and on a CPU it would keep the offline demo and the tests waiting.
TINY_ENHANCE_TOKENS = 32
DEFAULT_ENHANCE_SECONDS = 60.0


class EnhanceRequest(BaseModel):
    """*Improve prompt*: rewrite ``prompt`` with ``model``'s own text encoder (see engine/enhance.py).

    For an edit model, ``images`` (0-3, already checked) are shown to its vision-language encoder. A
    rewrite runs as a job of kind ``enhance``: one rewrite, no images out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    model: str = DEFAULT_GENERATE_MODEL
    images: tuple[InstanceOf[InputImage], ...] = ()
    #: The answer's language; auto = the prompt's (Russian when most letters are Cyrillic, else English).
    language: Literal["auto", "en", "ru"] = "auto"
    #: Token budget; None = DEFAULT_ENHANCE_TOKENS (TINY_ENHANCE_TOKENS on the offline tiny models).
    max_new_tokens: int | None = Field(None, ge=16, le=MAX_ENHANCE_TOKENS)
    time_limit_s: float = Field(DEFAULT_ENHANCE_SECONDS, gt=0.0, le=600.0)
    #: Sampling seed (random when not given): the same seed rewrites the same way.
    seed: int | None = Field(None, ge=0, le=MAX_SEED)

    @classmethod
    def build(cls, **fields: object) -> EnhanceRequest:
        """Construct from loose input, turning pydantic's errors into one :class:`InvalidRequest`."""
        return _build(cls, fields)

    @property
    def count(self) -> int:
        """One rewrite per job (the queue's job records read ``count``)."""
        return 1

    def resolved(self, settings: Settings) -> EnhanceRequest:
        """Prompt, model and pictures checked before anything loads; the seed drawn."""
        spec = get_model(self.model)
        if not self.prompt.strip():
            raise InvalidRequest("prompt is empty", param="prompt", code="prompt_empty")
        if self.images and not spec.is_edit:
            raise InvalidRequest(
                f"{spec.id} makes pictures from text only; pictures help only an edit model's rewrite",
                param="images",
                code="enhance_images_unused",
                details={"model": spec.id},
            )
        if len(self.images) > spec.max_input_images and spec.is_edit:
            check_image_count(spec, len(self.images))
        budget = self.max_new_tokens or (TINY_ENHANCE_TOKENS if spec.tiny else DEFAULT_ENHANCE_TOKENS)
        return self.model_copy(
            update={"seed": self.seed if self.seed is not None else random_seed(), "max_new_tokens": budget}
        )

    def metadata_fields(self) -> dict[str, Any]:
        fields = self.model_dump(exclude={"images"})
        if self.images:
            fields["input_images"] = [image.metadata() for image in self.images]
        return fields


def build_image_request(
    settings: Settings,
    *,
    model: str | None,
    prompt: str,
    images: Sequence[InputImage],
    mask: InputImage | None = None,
    **fields: Any,
) -> EditRequest | GenerateRequest:
    """The one way an image-in request becomes a resolved job request, whatever the entry point.

    The model and the mask decide the task: a Qwen edit model edits 1 to ``max_input_images`` images
    (:class:`EditRequest`); a Z-Image model reworks one image (img2img) or, with ``mask``, repaints its
    white part (inpaint), both as a :class:`GenerateRequest` with an init image. Without ``model`` a mask
    means Z-Image inpainting and no mask a Qwen edit. ``mask`` is in the studio's convention (white =
    repaint); edges with another convention convert it when decoding (``purpose="alpha_mask"``).
    Options that do not apply to the chosen model are refused, naming the field.
    """
    model_id = model or (DEFAULT_GENERATE_MODEL if mask is not None else DEFAULT_EDIT_MODEL)
    spec = get_model(model_id)
    given = {key: value for key, value in fields.items() if value is not None}
    if spec.is_edit:
        if mask is not None:
            raise InvalidRequest(
                f"a mask means Z-Image inpainting, and {spec.id} is an edit model; leave the mask out to "
                "edit with it, or use a Z-Image model",
                param="mask",
                code="mask_on_edit_model",
                details={"model": spec.id},
            )
        check_image_count(spec, len(images))
        _refuse_options(spec, given, ("guidance_scale", "strength"))
        edit = EditRequest.build(model=spec.id, prompt=prompt, images=tuple(images), **given)
        return edit.resolved(settings)
    if len(images) != 1:
        raise InvalidRequest(
            f"{spec.id} reworks exactly one image (img2img, or inpainting with a mask); got {len(images)}",
            param="images",
            code="one_image",
            details={"model": spec.id, "count": len(images)},
        )
    _refuse_options(
        spec, given, ("true_cfg_scale", "lightning", "reference_vae_area", "reference_condition_area")
    )
    return GenerateRequest.build(
        model=spec.id, prompt=prompt, init_image=images[0], mask=mask, **given
    ).resolved(settings)


def _refuse_options(spec: ModelSpec, given: dict[str, Any], names: Sequence[str]) -> None:
    for name in names:
        if name in given:
            raise InvalidRequest(
                f"{name} does not apply to {spec.id}",
                param=name,
                code="option_not_for_model",
                details={"field": name, "model": spec.id},
            )
