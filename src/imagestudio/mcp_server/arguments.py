"""The tools' arguments: pydantic models whose JSON schemas are what ``tools/list`` publishes.

The limits are the studio's own (prompt length, seed range, count, 1–3 pictures, size multiples): the schema
tells an assistant what is allowed before it calls, and the same model refuses what it sends anyway, in one
line naming the field. A model's own rules (its size range, its steps) are checked by the request builder,
as for every other edge.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagestudio.errors import InvalidRequest
from imagestudio.job_requests import MAX_COUNT, MAX_PROMPT_CHARS, MAX_SEED
from imagestudio.quoting import short_repr

#: What a History image id looks like (the HTTP routes' pattern).
IMAGE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
#: Sides every model here accepts are multiples of 16 within these bounds; each model narrows them.
SIDE_MULTIPLE = 16
MIN_SIDE = 16
MAX_SIDE = 3072
#: Search results per call: an assistant reads them as text, so a page stays short.
MAX_SEARCH_RESULTS = 50

_IMAGE_REFERENCE = (
    "A picture: a History image id, a URL of this server's image (…/api/images/ID), a data: URL "
    "(data:image/png;base64,…), or, when the server runs on this machine (stdio), a file path or file:// URI."
)


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: A weight variant's name (bf16, gguf-q4_k_m, sdnq-uint4 …); the model's own list decides which exist.
WEIGHTS_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
WEIGHTS_DESCRIPTION = (
    "Weight variant: auto (the best one present for this machine; default), bf16, or a quantized one "
    "such as gguf-q4_k_m — list_models shows each model's."
)


class _SizeAndSeed(_Arguments):
    width: int | None = Field(
        None,
        ge=MIN_SIDE,
        le=MAX_SIDE,
        multiple_of=SIDE_MULTIPLE,
        description="Width in pixels, a multiple of 16 (Z-Image-Turbo: 256–3072, default 1024).",
    )
    height: int | None = Field(
        None,
        ge=MIN_SIDE,
        le=MAX_SIDE,
        multiple_of=SIDE_MULTIPLE,
        description="Height in pixels, a multiple of 16.",
    )
    steps: int | None = Field(None, ge=1, le=200, description="Denoising steps; default: the model's own.")
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Seed; random when absent. The same seed repeats an image."
    )
    count: int = Field(1, ge=1, le=MAX_COUNT, description="Images to make, with seeds seed, seed+1, …")
    weights: str | None = Field(
        None,
        max_length=40,
        pattern=WEIGHTS_PATTERN,
        description=WEIGHTS_DESCRIPTION,
    )


class GenerateImageArguments(_SizeAndSeed):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What to draw, any language.")
    model: str | None = Field(
        None,
        max_length=100,
        description="A text-to-image model id from list_models; default: the server's generate model.",
    )


class EditImageArguments(_SizeAndSeed):
    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="The instruction; call the pictures Picture 1, Picture 2, Picture 3.",
    )
    images: list[str] = Field(
        min_length=1, max_length=3, description=f"1 to 3 pictures to edit. {_IMAGE_REFERENCE}"
    )
    mask: str | None = Field(
        None,
        description="Optional: repaint only the white part of this mask on the one picture given "
        f"(Z-Image inpainting). {_IMAGE_REFERENCE}",
    )
    model: str | None = Field(
        None,
        max_length=100,
        description="An edit model id from list_models; default: the server's edit model (or its "
        "inpaint model with a mask). A Z-Image model reworks one picture (img2img).",
    )


class ImprovePromptArguments(_Arguments):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="The short prompt to rewrite.")
    model: str | None = Field(
        None,
        max_length=100,
        description="Whose text encoder rewrites: a text-to-image model writes a detailed description, an "
        "edit model a precise instruction; default: the server's generate model.",
    )
    images: list[str] = Field(
        default_factory=list,
        max_length=3,
        description=f"Edit models only: the pictures the instruction is about. {_IMAGE_REFERENCE}",
    )
    language: Literal["auto", "en", "ru"] = Field(
        "auto", description="The answer's language; auto = the prompt's."
    )
    weights: str | None = Field(None, max_length=40, pattern=WEIGHTS_PATTERN, description=WEIGHTS_DESCRIPTION)


class ListModelsArguments(_Arguments):
    pass


class SearchHistoryArguments(_Arguments):
    words: str | None = Field(
        None,
        max_length=MAX_PROMPT_CHARS,
        description="Words the prompt contains (any case); absent = newest.",
    )
    limit: int = Field(10, ge=1, le=MAX_SEARCH_RESULTS, description="How many images to list, newest first.")


class GetImageArguments(_Arguments):
    id: str = Field(pattern=IMAGE_ID_PATTERN, description="A History image id (from search_history).")


_Args = TypeVar("_Args", bound=_Arguments)


def parse_arguments(model: type[_Args], arguments: dict[str, Any] | None) -> _Args:
    """``model`` from the call's arguments; the first problem as one :class:`InvalidRequest` line."""
    try:
        return model.model_validate(arguments or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "arguments"
        given = f" = {short_repr(first['input'])}" if first["type"] != "missing" else ""
        raise InvalidRequest(
            f"{field}{given}: {first['msg']}",
            param=field,
            code="field_invalid",
            details={"field": field, "value": given.removeprefix(" = ") or "—", "reason": first["msg"]},
        ) from None
