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
    """The A1111 layout: the prompt, ``Negative prompt: …`` (only when there is one), then
    ``Steps: 8, Sampler: …, Seed: 7, …, Model hash: …, Model: …, Lora hashes: "name: hash"``.

    LoRAs are written as A1111 writes them, ``<lora:name:scale>`` after the prompt, with their hashes
    twice: A1111's ``Lora hashes`` field and Civitai's ``Hashes: {JSON}`` (which sd-parsers and Civitai
    read; A1111's own field has colons inside quotes that simple readers split on).
    """
    if meta.get("mode") == "upscale":
        return _postprocess_parameters(meta)
    loras = [lora for lora in meta.get("loras") or () if isinstance(lora, dict)]
    prompt = meta.get("prompt", "")
    tags = [f"<lora:{_lora_name(lora)}:{_number(lora.get('scale', 1.0))}>" for lora in loras]
    lines = [" ".join([prompt, *tags]) if tags else prompt]
    negative = meta.get("negative_prompt")
    if isinstance(negative, str) and negative.strip():
        lines.append(f"Negative prompt: {negative}")
    cfg = meta.get("true_cfg_scale", meta.get("guidance_scale"))
    width, height = meta.get("width"), meta.get("height")
    lora_hashes = [(_lora_name(lora), lora["sha256"]) for lora in loras if lora.get("sha256")]
    hashes: dict[str, str] = {}
    if meta.get("model_hash"):
        hashes["model"] = meta["model_hash"]
    hashes.update({f"lora:{name}": digest for name, digest in lora_hashes})
    fields = [
        ("Steps", meta.get("steps")),
        ("Sampler", "Euler (flow matching)"),
        ("CFG scale", cfg),
        ("Seed", meta.get("seed")),
        # A1111 writes the first pass's size beside "Hires upscale" (what "Use these settings" restores).
        ("Size", f"{meta.get('first_pass_width', width)}x{meta.get('first_pass_height', height)}"),
        ("Model hash", meta.get("model_hash")),
        ("Model", meta.get("model")),
        ("Denoising strength", meta.get("strength", meta.get("hires_strength"))),
        ("Hires upscale", _number(meta["hires_scale"]) if meta.get("hires_scale") else None),
        ("Hires steps", meta.get("hires_steps")),
        ("Hires upscaler", meta.get("hires_upscaler_name") or meta.get("hires_upscaler")),
        ("ControlNet 0", _controlnet_unit(meta)),
        ("Lora hashes", '"' + ", ".join(f"{n}: {h}" for n, h in lora_hashes) + '"' if lora_hashes else None),
        ("Hashes", json.dumps(hashes) if hashes else None),
        ("Version", f"imagestudio {meta.get('app_version', '')}".strip()),
    ]
    lines.append(", ".join(f"{key}: {value}" for key, value in fields if value is not None))
    return "\n".join(lines)


def _controlnet_unit(meta: dict[str, Any]) -> str | None:
    """Forge's ``ControlNet 0: "Module: …, Model: …, Weight: …"`` (quoted: it holds commas)."""
    control = meta.get("control")
    if not isinstance(control, dict):
        return None
    module = "none" if control.get("type") == "map" else control.get("type")
    parts = [
        ("Module", module),
        ("Model", meta.get("control_model")),
        ("Weight", _number(control.get("weight"))),
        ("Guidance Start", _number(control.get("start"))),
        ("Guidance End", _number(control.get("end"))),
        ("Map hash", meta.get("control_map_sha256")),
    ]
    return '"' + ", ".join(f"{key}: {value}" for key, value in parts if value is not None) + '"'


def _postprocess_parameters(meta: dict[str, Any]) -> str:
    """An upscaled picture, as A1111's Extras tab writes one: the source's prompt, then its own fields."""
    fields = [
        ("Size", f"{meta.get('width')}x{meta.get('height')}"),
        ("Postprocess upscale by", _number(meta.get("upscale_by"))),
        ("Postprocess upscaler", meta.get("upscaler_name") or meta.get("upscaler")),
        ("Version", f"imagestudio {meta.get('app_version', '')}".strip()),
    ]
    return "\n".join([meta.get("prompt", ""), ", ".join(f"{key}: {value}" for key, value in fields)])


def _lora_name(lora: dict[str, Any]) -> str:
    from imagestudio.storage.hashes import lora_name

    return str(lora.get("name") or lora_name(str(lora.get("source", "lora"))))


def _number(value: Any) -> str:
    """``0.8`` → ``0.8``, ``1.0`` → ``1``: the way A1111 writes a LoRA's weight."""
    return f"{float(value):g}" if isinstance(value, (int, float)) else str(value)


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
