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

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, ValidationError, field_validator

from imagestudio.client_record import bounded
from imagestudio.errors import InvalidRequest
from imagestudio.lora_refs import LoraRef
from imagestudio.quoting import short_repr
from imagestudio.registry import (
    DEFAULT_EDIT_MODEL,
    DEFAULT_GENERATE_MODEL,
    LIGHTNING_TRUE_CFG,
    ModelSpec,
    Task,
    get_model,
)
from imagestudio.storage.inputs import InputImage

if TYPE_CHECKING:
    from imagestudio.config import Settings

MAX_SEED = 2**32 - 1
MAX_COUNT = 16
MAX_PROMPT_CHARS = 4000
#: The most elongated input picture accepted (long side : short side). The models' own outputs stay
#: within 12:1 (Z-Image's 3072 x 256); a 10000 x 1 strip is within the pixel limit, yet Qwen's pipeline
#: scales it to a zero-pixel-high reference and Z-Image would stretch it past recognition.
MAX_INPUT_ASPECT = 16
#: Qwen-Image-Edit's pipeline rounds each side of a reference to a multiple of this (its
#: ``calculate_dimensions``); a side that rounds to 0 fails deep inside the call.
EDIT_REFERENCE_MULTIPLE = 32


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def check_size(spec: ModelSpec, width: int, height: int) -> None:
    """Refuse sizes the model cannot make (Z-Image raises deep inside; Qwen edit silently rounds).

    Both sides are checked before refusing: with both wrong, one error names both (code ``several``,
    each side's own error in ``details["errors"]``), so that one correction is enough.
    """
    sides = (_side_problem(spec, "width", width), _side_problem(spec, "height", height))
    problems = [problem for problem in sides if problem is not None]
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidRequest(
            "; ".join(problem.message for problem in problems),
            param="size",
            code="several",
            details={"errors": [{"code": p.code, "details": p.details} for p in problems]},
        )
    _check_pixels(spec, width, height)


def _side_problem(spec: ModelSpec, name: str, value: int) -> InvalidRequest | None:
    """What is wrong with one side of the size (``name`` is width or height), or None."""
    if value % spec.size_multiple:
        lower = value // spec.size_multiple * spec.size_multiple
        return InvalidRequest(
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
        return InvalidRequest(
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
    return None


def _check_pixels(spec: ModelSpec, width: int, height: int) -> None:
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


def check_aspect(image: InputImage, param: str) -> None:
    """Refuse an input picture more elongated than :data:`MAX_INPUT_ASPECT` (e.g. 10000 x 1)."""
    long_side, short_side = max(image.width, image.height), min(image.width, image.height)
    if long_side > MAX_INPUT_ASPECT * short_side:
        raise InvalidRequest(
            f"{param} {short_repr(image.name)} is {image.width}x{image.height}, an aspect ratio over "
            f"{MAX_INPUT_ASPECT}:1; pictures may be at most {MAX_INPUT_ASPECT} times longer than wide "
            "(crop or pad it)",
            param=param,
            code="input_aspect",
            details={
                "name": short_repr(image.name),
                "width": image.width,
                "height": image.height,
                "max": MAX_INPUT_ASPECT,
            },
        )


def reference_size(area: int, width: int, height: int) -> tuple[int, int]:
    """The size Qwen-Image-Edit's pipeline encodes a ``width`` x ``height`` reference at, for ``area``
    pixels (diffusers' ``calculate_dimensions``: the aspect kept, each side rounded to 32)."""
    ratio = width / height
    scaled_width = math.sqrt(area * ratio)
    scaled_height = scaled_width / ratio
    step = EDIT_REFERENCE_MULTIPLE
    return round(scaled_width / step) * step, round(scaled_height / step) * step


def check_reference_areas(image: InputImage, vae_area: int, condition_area: int) -> None:
    """Refuse a reference the edit pipeline would scale to a zero-pixel side at the chosen areas (a
    small ``reference_condition_area`` makes even a 5:1 picture too narrow)."""
    for name, area in (("reference_vae_area", vae_area), ("reference_condition_area", condition_area)):
        if 0 in reference_size(area, image.width, image.height):
            # A short side survives rounding to 32 when it is over 16 px (Python rounds 0.5 to 0):
            # sqrt(area / ratio) > 16, so the ratio must stay under area / 16 ** 2.
            most = max(1, math.ceil(area / (EDIT_REFERENCE_MULTIPLE // 2) ** 2) - 1)
            raise InvalidRequest(
                f"image {short_repr(image.name)} is {image.width}x{image.height}: at {name} {area} its "
                f"short side would be scaled to nothing; at this area pictures may be at most {most}:1 "
                f"(raise {name}, or crop the picture)",
                param=name,
                code="reference_area_aspect",
                details={
                    "name": short_repr(image.name),
                    "width": image.width,
                    "height": image.height,
                    "field": name,
                    "value": area,
                    "max": most,
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
    #: Weight variant to run (``bf16``, ``gguf-q4_k_m``, ``sdnq-uint4`` …); None/``auto``: the config's.
    weights: str | None = Field(None, max_length=40)

    @classmethod
    def build(cls: type[_Model], **fields: object) -> _Model:
        """Construct from loose input, turning pydantic's errors into one :class:`InvalidRequest`."""
        return _build(cls, fields)

    @field_validator("client")
    @classmethod
    def _bounded_client(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Stored in every PNG and History row and sent back in answers: whatever an edge passes, only a
        # bounded, JSON-plain copy is kept (a 300-deep list once made every History listing fail).
        return None if value is None else bounded(value)

    def _check_prompt(self) -> None:
        if not self.prompt.strip():
            raise InvalidRequest("prompt is empty", param="prompt", code="prompt_empty")

    def seeds(self) -> list[int]:
        """The seed of each image: seed, seed+1, … (wrapping at 2**32, as other tools do)."""
        assert self.seed is not None, "call resolved() first"
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.count)]


class ControlInput(BaseModel):
    """A control image steering a Z-Image generation through its ControlNet (see engine/control.py).

    ``type`` says what the picture is made into first: ``canny`` detects its edges (OpenCV, no weights);
    ``map`` uses it as it is (a map made elsewhere). ``start``/``end`` are the share of the steps the
    control acts on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    image: InstanceOf[InputImage]
    weight: float | None = None
    start: float = Field(0.0, ge=0.0, le=1.0)
    end: float = Field(1.0, ge=0.0, le=1.0)

    @classmethod
    def build(cls, **fields: object) -> ControlInput:
        """Construct from loose input, turning pydantic's errors into one :class:`InvalidRequest`."""
        return _build(cls, fields)

    def metadata(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "weight": self.weight,
            "start": self.start,
            "end": self.end,
            "image": self.image.metadata(),
        }


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
    #: Hires pass (off when None): each image is upscaled ``hires_scale`` times by ``hires_upscaler``, then
    #: reworked by img2img at ``hires_strength`` for ``hires_steps`` steps (tiled past the model's limit).
    hires_scale: float | None = Field(None, ge=1.0, le=4.0)
    hires_upscaler: str | None = None
    hires_strength: float | None = Field(None, gt=0.0, le=1.0)
    hires_steps: int | None = Field(None, ge=1, le=200)
    #: A control image (ControlNet); its map is made by the engine before the model runs.
    control: ControlInput | None = None

    @property
    def mode(self) -> Literal["text-to-image", "img2img", "inpaint"]:
        if self.init_image is None:
            return "text-to-image"
        return "inpaint" if self.mask is not None else "img2img"

    def resolved(self, settings: Settings) -> GenerateRequest:
        """Every blank filled (registry, then config), every rule checked."""
        spec = get_model(self.model, task="text-to-image")
        self._check_prompt()
        check_weights(spec, self.weights)
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
                **self._resolved_hires(settings, width, height, steps),
                "control": self._resolved_control(spec),
            }
        )

    def _resolved_control(self, spec: ModelSpec) -> ControlInput | None:
        """The control's type known to the model's ControlNet, its weight within the card's range."""
        from imagestudio.registry import DETECTED_CONTROL_TYPES, controlnet_for

        control = self.control
        if control is None:
            return None
        net = controlnet_for(spec.id)
        if net is None:
            raise InvalidRequest(
                f"{spec.id} takes no control image",
                param="control",
                code="no_control",
                details={"model": spec.id},
            )
        usable = (*DETECTED_CONTROL_TYPES, "map")
        if control.type not in usable:
            trained = " (the model knows it, but this version has no detector for it: make the map elsewhere "
            trained += "and use map)" if control.type in net.types else ""
            raise InvalidRequest(
                f"control type {control.type!r} is not available{trained}; use one of: {', '.join(usable)}",
                param="control.type",
                code="control_type",
                details={"type": control.type, "valid": ", ".join(usable)},
            )
        weight = control.weight if control.weight is not None else net.default_weight
        if not net.min_weight <= weight <= net.max_weight:
            raise InvalidRequest(
                f"control weight {weight:g} is outside {net.min_weight:g}..{net.max_weight:g}, the range the "
                f"{net.title} card recommends",
                param="control.weight",
                code="control_weight",
                details={"value": weight, "min": net.min_weight, "max": net.max_weight},
            )
        if control.start >= control.end:
            raise InvalidRequest(
                f"control start {control.start:g} must be before its end {control.end:g}",
                param="control.start",
                code="control_window",
                details={"start": control.start, "end": control.end},
            )
        return control.model_copy(update={"weight": weight})

    def _resolved_hires(self, settings: Settings, width: int, height: int, steps: int) -> dict[str, Any]:
        """The hires pass's upscaler, strength and steps (defaults filled); its output size checked."""
        from imagestudio.registry import get_upscaler

        if self.hires_scale is None:
            for name in ("hires_upscaler", "hires_strength", "hires_steps"):
                if getattr(self, name) is not None:
                    raise InvalidRequest(
                        f"{name} needs a hires pass (--hires SCALE)",
                        param=name,
                        code="needs_hires",
                        details={"field": name},
                    )
            return {}
        if self.init_image is not None:
            raise InvalidRequest(
                "the hires pass follows text-to-image; upscale a picture with `imagestudio upscale` instead",
                param="hires_scale",
                code="hires_with_init_image",
            )
        upscaler = get_upscaler(self.hires_upscaler or settings.upscale.default_upscaler)
        out_width, out_height = hires_size(width, height, self.hires_scale)
        limit = settings.upscale.max_output_pixels
        if out_width * out_height > limit:
            raise InvalidRequest(
                f"hires {self.hires_scale:g} makes {width}x{height} into {out_width}x{out_height} "
                f"({out_width * out_height:,} pixels); at most {limit:,} are allowed "
                "(upscale.max_output_pixels)",
                param="hires_scale",
                code="upscale_too_large",
                details={
                    "scale": self.hires_scale,
                    "width": out_width,
                    "height": out_height,
                    "max": f"{limit:,}",
                },
            )
        strength = self.hires_strength if self.hires_strength is not None else DEFAULT_HIRES_STRENGTH
        hires_steps = self.hires_steps or steps
        if denoising_steps(hires_steps, strength) < 1:
            raise InvalidRequest(
                f"hires strength {strength} with {hires_steps} steps runs no denoising step; use a strength "
                f"of at least {1 / hires_steps:.3g} or more hires steps",
                param="hires_strength",
                code="strength_no_steps",
                details={"strength": strength, "steps": hires_steps, "min": f"{1 / hires_steps:.3g}"},
            )
        return {"hires_upscaler": upscaler.id, "hires_strength": strength, "hires_steps": hires_steps}

    def hires_size(self) -> tuple[int, int] | None:
        """The hires pass's output size (None without one)."""
        if self.hires_scale is None:
            return None
        assert self.width is not None and self.height is not None, "call resolved() first"
        return hires_size(self.width, self.height, self.hires_scale)

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
        check_aspect(self.init_image, "init_image")
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
        fields = self.model_dump(
            exclude={"count", "init_image", "mask", "strength", "loras", "client", "control"}
        )
        if self.control is not None:
            fields["control"] = self.control.metadata()
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


#: img2img strength of the hires pass: enough to redraw the upscaler's texture as detail, little enough to
#: keep the composition (the 0.3-0.4 that Z-Image-Turbo upscale workflows use).
DEFAULT_HIRES_STRENGTH = 0.35


def hires_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """``width`` x ``height`` times ``scale``, each side rounded to a multiple of 16 (the model's rule)."""
    return max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16)


def check_weights(spec: ModelSpec, weights: str | None) -> None:
    """A named weight variant must be one of the model's (None and ``auto`` are decided at plan time)."""
    if weights is not None and weights != "auto":
        spec.variant(weights)


def optional_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Metadata without the optional features a job did not use (no improved prompt, variety off), so
    the metadata of ordinary images stays as it always was."""
    if fields.get("original_prompt") is None:
        fields.pop("original_prompt", None)
    if not fields.get("variety"):
        fields.pop("variety", None)
    if fields.get("hires_scale") is None:
        for name in ("hires_scale", "hires_upscaler", "hires_strength", "hires_steps"):
            fields.pop(name, None)
    if fields.get("weights") is None:
        fields.pop("weights", None)  # the studio records the variant that ran
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
        check_weights(spec, self.weights)
        check_image_count(spec, len(self.images))
        for image in self.images:
            check_aspect(image, "image")
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
        vae_area = self.reference_vae_area or options.reference_vae_area or spec.reference_vae_area
        condition_area = (
            self.reference_condition_area or options.reference_condition_area or spec.reference_condition_area
        )
        if vae_area is not None and condition_area is not None:  # every edit model's registry entry sets both
            for image in self.images:
                check_reference_areas(image, vae_area, condition_area)
        return self.model_copy(
            update={
                "width": width,
                "height": height,
                "steps": steps,
                "true_cfg_scale": true_cfg,
                "negative_prompt": negative,
                "seed": self.seed if self.seed is not None else random_seed(),
                "reference_vae_area": vae_area,
                "reference_condition_area": condition_area,
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
    #: Weight variant whose text encoder rewrites (None/``auto``: the config's).
    weights: str | None = Field(None, max_length=40)

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
        check_weights(spec, self.weights)
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
    task: Task | None = None,
    **fields: Any,
) -> EditRequest | GenerateRequest:
    """The one way an image-in request becomes a resolved job request, whatever the entry point.

    The model and the mask decide the task: a Qwen edit model edits 1 to ``max_input_images`` images
    (:class:`EditRequest`); a Z-Image model reworks one image (img2img) or, with ``mask``, repaints its
    white part (inpaint), both as a :class:`GenerateRequest` with an init image. Without ``model`` a mask
    means Z-Image inpainting and no mask a Qwen edit. ``mask`` is in the studio's convention (white =
    repaint); edges with another convention convert it when decoding (``purpose="alpha_mask"``).
    Options that do not apply to the chosen model are refused, naming the field. ``task`` is the one
    task an entry point serves, when it serves one (Generate's form and ``imagestudio generate`` draw:
    an edit model's id there is the wrong model, not an edit).
    """
    model_id = model or (DEFAULT_GENERATE_MODEL if mask is not None else DEFAULT_EDIT_MODEL)
    spec = get_model(model_id, task=task)
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


#: Largest upscale factor asked for at once (A1111's extras allow up to 8 as well).
MAX_UPSCALE = 8.0


class UpscaleRequest(BaseModel):
    """Enlarge one picture ``scale`` times with an ESRGAN-family upscaler (see engine/upscale.py).

    ``images`` holds the one picture (the name every request with input pictures uses, so History keeps
    it). ``prompt`` is only what the picture was made from, when the edge knows it (for History's search).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    images: tuple[InstanceOf[InputImage], ...]
    upscaler: str | None = None
    scale: float = Field(2.0, ge=1.0, le=MAX_UPSCALE)
    prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    #: Tile side in input pixels (None: the largest that fits, see memory/upscale.py).
    tile: int | None = Field(None, ge=32, le=4096)
    client: dict[str, Any] | None = None

    @classmethod
    def build(cls, **fields: object) -> UpscaleRequest:
        """Construct from loose input, turning pydantic's errors into one :class:`InvalidRequest`."""
        return _build(cls, fields)

    @property
    def model(self) -> str:
        """The upscaler (jobs and History name a job's model)."""
        return self.upscaler or ""

    @property
    def negative_prompt(self) -> None:
        return None

    @property
    def count(self) -> int:
        return 1

    @property
    def seed(self) -> int:
        """Upscaling draws no noise; History's seed column gets 0."""
        return 0

    def seeds(self) -> list[int]:
        return [0]

    @property
    def image(self) -> InputImage:
        return self.images[0]

    def output_size(self) -> tuple[int, int]:
        return round(self.image.width * self.scale), round(self.image.height * self.scale)

    def resolved(self, settings: Settings) -> UpscaleRequest:
        """The upscaler named (config's default unless given), one picture, the output within the limit."""
        from imagestudio.registry import get_upscaler

        if len(self.images) != 1:
            raise InvalidRequest(
                f"upscaling takes exactly one picture; got {len(self.images)}",
                param="image",
                code="upscale_one_image",
                details={"count": len(self.images)},
            )
        spec = get_upscaler(self.upscaler or settings.upscale.default_upscaler)
        width, height = self.output_size()
        limit = settings.upscale.max_output_pixels
        if width * height > limit:
            largest = math.sqrt(limit / (self.image.width * self.image.height))
            raise InvalidRequest(
                f"scale {self.scale:g} makes {self.image.width}x{self.image.height} into {width}x{height} "
                f"({width * height:,} pixels); at most {limit:,} are allowed (upscale.max_output_pixels): "
                f"use a scale of at most {math.floor(largest * 100) / 100:g}",
                param="scale",
                code="upscale_too_large",
                details={"scale": self.scale, "width": width, "height": height, "max": f"{limit:,}"},
            )
        return self.model_copy(update={"upscaler": spec.id})

    def metadata_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "prompt": self.prompt,
            "mode": "upscale",
            "upscaler": self.upscaler,
            "upscale_by": self.scale,
            "input_images": [image.metadata() for image in self.images],
        }
        if self.tile is not None:
            fields["tile"] = self.tile
        if self.client:
            fields["client"] = dict(self.client)
        return fields


def build_upscale_request(settings: Settings, image: InputImage, **fields: Any) -> UpscaleRequest:
    """The one way an upscale becomes a resolved job request, whatever the entry point."""
    return UpscaleRequest.build(images=(image,), **fields).resolved(settings)
