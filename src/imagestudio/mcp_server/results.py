"""What a tool returns: the pictures as PNG image blocks an assistant can take, and the facts as text.

Hosts cap what one tool result may carry (Claude Desktop refuses results over 1,048,576 characters;
Anthropic's API refuses images over 8,000 px a side), and a 1024² PNG is often larger than that. So the
pictures of one result share ``mcp.max_image_kb`` of base64: an image that does not fit is sent as a
downscaled PNG copy, and the text says so and where the full image is (file, History id, URL). Settings,
seeds and ids go into the text and the structured content; base64 never does (some hosts show structured
content to the model as text).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mcp_types as types

if TYPE_CHECKING:
    from imagestudio.jobs.model import JobInfo, SavedImage

#: Anthropic's API refuses an image with a side over 8,000 px; stay clear of it.
MAX_SHOWN_SIDE = 7680
#: Smallest side a downscaled copy is made at: below this a picture says nothing.
MIN_SHOWN_SIDE = 64


@dataclass(frozen=True)
class ShownImage:
    """The PNG an image block carries: the file's own bytes, or a downscaled copy of them."""

    png: bytes
    width: int
    height: int
    downscaled: bool


def b64_size(data: bytes) -> int:
    return 4 * ((len(data) + 2) // 3)


def shown_png(path: Path, budget_chars: int) -> ShownImage:
    """The file's PNG when its base64 fits ``budget_chars`` (and its sides the host's limit), else the
    largest downscaled copy tried that fits (sides shrink by the square root of the overshoot, then 15 %
    at a time)."""
    from PIL import Image

    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    if b64_size(data) <= budget_chars and max(width, height) <= MAX_SHOWN_SIDE:
        return ShownImage(data, width, height, downscaled=False)
    scale = min(1.0, MAX_SHOWN_SIDE / max(width, height), (budget_chars / b64_size(data)) ** 0.5)
    while True:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        buffer = io.BytesIO()
        image.resize(size, Image.Resampling.LANCZOS).save(buffer, format="PNG", optimize=True)
        copy = buffer.getvalue()
        if b64_size(copy) <= budget_chars or min(size) <= MIN_SHOWN_SIDE:
            return ShownImage(copy, size[0], size[1], downscaled=True)
        scale *= 0.85


def image_results(
    info: JobInfo, *, max_image_kb: int, url_of: Any = None, note: str | None = None
) -> types.CallToolResult:
    """A finished image job as a tool result: one image block per picture, the facts as text, and — when
    ``url_of`` (image id → URL) is given, over HTTP — a resource link to each stored PNG."""
    images = info.images
    budget = max_image_kb * 1000 // max(1, len(images))
    content: list[Any] = []
    shown_facts: list[dict[str, Any]] = []
    lines = [_summary(info)]
    if note:
        lines.append(note)
    for number, image in enumerate(images, 1):
        shown = shown_png(Path(str(image.path)), budget)
        url = url_of(image.id) if url_of is not None else None
        content.append(
            types.ImageContent(
                type="image", data=base64.b64encode(shown.png).decode("ascii"), mime_type="image/png"
            )
        )
        if url is not None:
            content.append(
                types.ResourceLink(
                    type="resource_link",
                    uri=url,
                    name=f"{image.id}.png",
                    title=f"Image {number} ({image.width}x{image.height}, seed {image.seed})",
                    mime_type="image/png",
                    size=Path(str(image.path)).stat().st_size,
                )
            )
        lines.append(_image_line(number, len(images), image, shown, url, max_image_kb))
        shown_facts.append(_image_facts(image, shown, url))
    content.insert(0, types.TextContent(type="text", text="\n".join(lines)))
    structured = {
        "job_id": info.id,
        "model": info.model,
        "seconds": _seconds(info),
        "settings": settings_of(info.request),
        "images": shown_facts,
    }
    return types.CallToolResult(content=content, structured_content=structured)


def stored_image_result(image: SavedImage, record: dict[str, Any], *, max_image_kb: int, url: str | None):
    """One History image (``get_image``): the picture, capped like any other, and its parameters."""
    shown = shown_png(Path(str(image.path)), max_image_kb * 1000)
    lines = [
        f"History image {image.id}: {record.get('prompt')!r}, model {record.get('model')}, "
        f"seed {image.seed}, {image.width}x{image.height}, made {record.get('created')}",
        _image_line(1, 1, image, shown, url, max_image_kb).removeprefix("Image 1 of 1: "),
    ]
    content: list[Any] = [
        types.TextContent(type="text", text="\n".join(lines)),
        types.ImageContent(
            type="image", data=base64.b64encode(shown.png).decode("ascii"), mime_type="image/png"
        ),
    ]
    if url is not None:
        content.append(
            types.ResourceLink(type="resource_link", uri=url, name=f"{image.id}.png", mime_type="image/png")
        )
    structured = {**record, **_image_facts(image, shown, url)}
    return types.CallToolResult(content=content, structured_content=structured)


#: The request fields an assistant (or its user) needs to repeat or vary a picture.
_SETTINGS = (
    "model",
    "prompt",
    "width",
    "height",
    "steps",
    "seed",
    "count",
    "guidance_scale",
    "true_cfg_scale",
    "negative_prompt",
    "strength",
    "mode",
)


def settings_of(request: dict[str, Any]) -> dict[str, Any]:
    return {name: request[name] for name in _SETTINGS if request.get(name) is not None}


def _seconds(info: JobInfo) -> float | None:
    if info.finished_at is None or info.started_at is None:
        return None
    return round(info.finished_at - info.started_at, 2)


def _summary(info: JobInfo) -> str:
    request = info.request
    count = len(info.images)
    parts = [f"{request.get('width')}x{request.get('height')}", f"{request.get('steps')} steps"]
    if request.get("guidance_scale") is not None:
        parts.append(f"guidance {request['guidance_scale']:g}")
    if request.get("true_cfg_scale") is not None:
        parts.append(f"true CFG {request['true_cfg_scale']:g}")
    if request.get("strength") is not None:
        parts.append(f"strength {request['strength']:g}")
    seeds = [image.seed for image in info.images]
    parts.append(f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}–{seeds[-1]}")
    seconds = _seconds(info)
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    kind = "edited" if info.kind == "edit" else "made"
    return (
        f"{kind.capitalize()} {count} image{'s' if count != 1 else ''} with {info.model}{took}: "
        f"{', '.join(parts)}. Prompt: {request.get('prompt')!r}. Job {info.id}."
    )


def _image_line(
    number: int, total: int, image: SavedImage, shown: ShownImage, url: str | None, max_image_kb: int
) -> str:
    where = [f"History id {image.id}", f"file {image.path}"]
    if url is not None:
        where.append(f"URL {url}")
    line = f"Image {number} of {total}: seed {image.seed}, {image.width}x{image.height}; {', '.join(where)}."
    if shown.downscaled:
        line += (
            f" Shown downscaled to {shown.width}x{shown.height}: the full PNG is larger than the "
            f"{max_image_kb} kB a tool result may carry here (mcp.max_image_kb)."
        )
    return line


def _image_facts(image: SavedImage, shown: ShownImage, url: str | None) -> dict[str, Any]:
    return {
        "id": image.id,
        "seed": image.seed,
        "width": image.width,
        "height": image.height,
        "path": str(image.path),
        "url": url,
        "shown_width": shown.width,
        "shown_height": shown.height,
        "downscaled": shown.downscaled,
    }
