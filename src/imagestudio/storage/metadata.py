"""Generation parameters embedded in PNG files.

Two chunks: ``parameters`` in the AUTOMATIC1111 text format, which other tools (A1111, ComfyUI's
loaders, image viewers, Civitai) already read; and ``imagestudio``, a JSON object with everything,
which is what this app reads back ("use these settings", history rebuilds).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

JSON_KEY = "imagestudio"
A1111_KEY = "parameters"


def a1111_parameters(meta: dict[str, Any]) -> str:
    """The A1111 layout: the prompt, ``Negative prompt: …``, then ``Steps: 8, Sampler: …, Seed: 7, …``."""
    lines = [meta.get("prompt", "")]
    if meta.get("negative_prompt"):
        lines.append(f"Negative prompt: {meta['negative_prompt']}")
    cfg = meta.get("true_cfg_scale", meta.get("guidance_scale"))
    fields = [
        ("Steps", meta.get("steps")),
        ("Sampler", "Euler (flow matching)"),
        ("CFG scale", cfg),
        ("Seed", meta.get("seed")),
        ("Size", f"{meta.get('width')}x{meta.get('height')}"),
        ("Model", meta.get("model")),
        ("Denoising strength", meta.get("strength")),
        ("Version", f"imagestudio {meta.get('app_version', '')}".strip()),
    ]
    lines.append(", ".join(f"{key}: {value}" for key, value in fields if value is not None))
    return "\n".join(lines)


def png_bytes(image: Image.Image, meta: dict[str, Any]) -> bytes:
    """Encode ``image`` as PNG with both metadata chunks (UTF-8 safe: Cyrillic prompts survive)."""
    info = PngInfo()
    # add_text falls back to an iTXt (UTF-8) chunk when the text is not Latin-1.
    info.add_text(A1111_KEY, a1111_parameters(meta))
    info.add_itxt(JSON_KEY, json.dumps(meta, ensure_ascii=False, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata this app wrote into ``path``; empty if there is none."""
    with Image.open(path) as image:
        text = image.text.get(JSON_KEY)  # type: ignore[attr-defined]
    return json.loads(text) if text else {}


def read_parameters(path: Path) -> str | None:
    """The A1111-style ``parameters`` text of ``path``, if any."""
    with Image.open(path) as image:
        return image.text.get(A1111_KEY)  # type: ignore[attr-defined]
