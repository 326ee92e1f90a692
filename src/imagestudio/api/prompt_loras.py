"""AUTOMATIC1111's LoRA syntax in prompts: ``<lora:NAME:0.8>`` names ``NAME.safetensors`` in the LoRA
folder (``storage.loras_dir``).

A1111 clients (SillyTavern, scripts, prompt libraries) put LoRAs in the prompt text; the tags are taken
out of the prompt and become the request's LoRAs, so the model never sees them as words. A name is
only ever looked up among the files of that folder, so a prompt cannot reach any other path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from imagestudio.errors import InvalidRequest
from imagestudio.lora_refs import LORA_SUFFIX, MAX_SCALE, MIN_SCALE, LoraRef

#: ``<lora:name>`` or ``<lora:name:scale>``; A1111 also accepts ``<lyco:…>`` for the same thing.
_TAG = re.compile(r"<(?:lora|lyco):([^:>]+)(?::([^:>]*))?(?::[^>]*)?>", re.IGNORECASE)


def available_loras(folder: Path | None) -> dict[str, Path]:
    """``{name: file}`` for the ``.safetensors`` files directly in ``folder`` (none if it is missing)."""
    if folder is None or not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob(f"*{LORA_SUFFIX}")) if path.is_file()}


def take_lora_tags(prompt: str, folder: Path | None) -> tuple[str, tuple[LoraRef, ...]]:
    """The prompt without its LoRA tags, and the LoRAs they name; 400 for a name not in ``folder``."""
    tags = list(_TAG.finditer(prompt))
    if not tags:
        return prompt, ()
    known = available_loras(folder)
    refs = []
    for tag in tags:
        name, scale_text = tag.group(1).strip(), (tag.group(2) or "").strip()
        path = known.get(name)
        if path is None:
            listed = ", ".join(known) or "none"
            raise InvalidRequest(
                f"LoRA {name!r} is not in the LoRA folder (storage.loras_dir; put {name}{LORA_SUFFIX} "
                f"there); available: {listed}",
                param="prompt",
            )
        try:
            scale = float(scale_text) if scale_text else 1.0
        except ValueError:
            raise InvalidRequest(
                f"LoRA {name!r} has scale {scale_text!r}, not a number", param="prompt"
            ) from None
        if not MIN_SCALE <= scale <= MAX_SCALE:
            raise InvalidRequest(
                f"LoRA {name!r} scale {scale:g} is outside {MIN_SCALE:g}..{MAX_SCALE:g}", param="prompt"
            )
        refs.append(LoraRef(source=str(path), scale=scale, label=path.name))
    cleaned = re.sub(r",\s*(?=,)", "", re.sub(r"[ \t]{2,}", " ", _TAG.sub(" ", prompt)))
    return cleaned.strip(" ,"), tuple(refs)


def lora_listing(folder: Path | None) -> list[dict[str, Any]]:
    """``GET /sdapi/v1/loras``: A1111's entries (file names only; no server paths are shown)."""
    return [
        {"name": name, "alias": name, "path": path.name, "metadata": {}}
        for name, path in available_loras(folder).items()
    ]
