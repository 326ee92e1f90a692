"""What a request says about LoRAs: ``--lora PATH_OR_REPO[:SCALE]`` parsed into a :class:`LoraRef`.

Part of the request types (:mod:`imagestudio.job_requests`), so it sits below the engine, which finds the
files (:mod:`imagestudio.engine.loras`). Importing this module is cheap (pydantic only).
"""

from __future__ import annotations

import contextlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imagestudio.errors import InvalidRequest

LORA_SUFFIX = ".safetensors"
MIN_SCALE, MAX_SCALE = -4.0, 4.0


class LoraRef(BaseModel):
    """One ``--lora`` argument: a local ``.safetensors`` file or folder, or a hub repo (optionally
    ``owner/name/file.safetensors``), with the scale its effect is multiplied by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1, max_length=1000)
    scale: float = Field(1.0, ge=MIN_SCALE, le=MAX_SCALE)

    def metadata(self) -> dict[str, Any]:
        return {"source": self.source, "scale": self.scale}


def parse_lora(text: str) -> LoraRef:
    """``PATH_OR_REPO[:SCALE]`` → :class:`LoraRef`; a trailing ``:number`` is the scale (default 1.0).

    Only a trailing part that parses as a number counts as the scale, so ``C:\\loras\\x.safetensors`` and
    ``owner/repo`` keep their colons and slashes.
    """
    text = text.strip()
    head, sep, tail = text.rpartition(":")
    source, scale = text, 1.0
    if sep:
        with contextlib.suppress(ValueError):  # not a number: the colon belongs to the source
            source, scale = head, float(tail)
    if not source:
        raise InvalidRequest(f"--lora {text!r} names no file or repo", param="lora")
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise InvalidRequest(
            f"LoRA scale {scale} in {text!r} is outside {MIN_SCALE}..{MAX_SCALE}", param="lora"
        )
    return LoraRef(source=source, scale=scale)
