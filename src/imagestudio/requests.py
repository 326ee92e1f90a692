"""Typed requests: every entry point (CLI, UI, API) builds one of these and calls :meth:`resolved`.

``resolved`` fills the blanks from the registry and config and validates against the model's rules
*before* any model loads, raising a one-line :class:`~imagestudio.errors.InvalidRequest` naming the
field, the value and what is allowed.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagestudio.errors import InvalidRequest
from imagestudio.registry import DEFAULT_GENERATE_MODEL, ModelSpec, get_model

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
            )
        if not spec.min_side <= value <= spec.max_side:
            raise InvalidRequest(
                f"{name} {value} is outside {spec.min_side}..{spec.max_side} for {spec.id}", param=name
            )
    if width * height > spec.max_pixels:
        raise InvalidRequest(
            f"size {width}x{height} is {width * height:,} pixels; "
            f"{spec.id} allows at most {spec.max_pixels:,}",
            param="size",
        )


def check_steps(spec: ModelSpec, steps: int) -> None:
    if steps < spec.min_steps:
        raise InvalidRequest(
            f"steps {steps} is below {spec.min_steps}, the minimum for {spec.id}", param="steps"
        )


def _first_error(error: ValidationError) -> InvalidRequest:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "request"
    return InvalidRequest(f"{field} = {first.get('input')!r}: {first['msg']}", param=field)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    width: int | None = Field(None, ge=1)
    height: int | None = Field(None, ge=1)
    steps: int | None = Field(None, ge=1, le=200)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    count: int = Field(1, ge=1, le=MAX_COUNT)

    @classmethod
    def build(cls, **fields: object):
        """Construct from loose input, turning pydantic's errors into one :class:`InvalidRequest`."""
        try:
            return cls(**{k: v for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            raise _first_error(exc) from None

    def _check_prompt(self) -> None:
        if not self.prompt.strip():
            raise InvalidRequest("prompt is empty", param="prompt")

    def seeds(self) -> list[int]:
        """The seed of each image: seed, seed+1, … (wrapping at 2**32, as other tools do)."""
        assert self.seed is not None, "call resolved() first"
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.count)]


class GenerateRequest(_Request):
    """Text-to-image (and, with the edit issue's fields, img2img/inpaint) on a Z-Image model."""

    model: str = DEFAULT_GENERATE_MODEL
    guidance_scale: float | None = Field(None, ge=0.0, le=30.0)

    def resolved(self, settings: Settings) -> GenerateRequest:
        """Every blank filled (registry, then config), every rule checked."""
        spec = get_model(self.model, task="text-to-image")
        self._check_prompt()
        gen = settings.generation
        width = self.width or gen.default_width
        height = self.height or gen.default_height
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
            )
        if spec.fixed_guidance is not None and (self.negative_prompt or "").strip():
            raise InvalidRequest(
                f"a negative prompt has no effect on {spec.id}: it runs without guidance",
                param="negative_prompt",
            )
        steps = self.steps or gen.default_num_inference_steps or spec.default_steps
        check_steps(spec, steps)
        return self.model_copy(
            update={
                "width": width,
                "height": height,
                "steps": steps,
                "guidance_scale": guidance,
                "seed": self.seed if self.seed is not None else random_seed(),
            }
        )
