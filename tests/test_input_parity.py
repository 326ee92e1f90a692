"""The same bytes and fields through the CLI, the HTTP API and the web UI give the same request and pixels.

Each entry point is driven through its own code: the CLI's ``edit_request`` (files on disk), the API's
upload decoder (bytes as they arrive in a multipart form), the UI's ``read_uploads`` (the files Gradio
stored). Three inputs used to differ between them: a transparent PNG, a 16-bit greyscale PNG, and bytes
that are not an image.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagestudio.api.uploads import Upload, decode_upload_sync
from imagestudio.cli.edit import edit_request
from imagestudio.errors import InvalidImage
from imagestudio.requests import build_image_request
from imagestudio.ui.common import UIContext
from imagestudio.ui.edit_page import read_uploads
from imagestudio.ui.texts import Texts

FIELDS: dict[str, Any] = {"steps": 2, "seed": 5, "true_cfg_scale": 2.5, "negative_prompt": "blur"}
MODEL = "tiny-qwen-image-edit"


def transparent_red() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def grey_16bit() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32), 40000, dtype=np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


class _Backend:
    def __init__(self, settings: Any) -> None:
        self.settings = settings


def through_cli(settings: Any, path: Path) -> Any:
    return edit_request(settings, model=MODEL, prompt="make it blue", images=[path], **FIELDS)


def through_api(settings: Any, path: Path) -> Any:
    image = decode_upload_sync(Upload(path.read_bytes(), field="image[0]", filename=path.name), settings)
    return build_image_request(settings, model=MODEL, prompt="make it blue", images=[image], **FIELDS)


def through_ui(settings: Any, path: Path) -> Any:
    ctx = UIContext(backend=_Backend(settings), texts=Texts.load())  # type: ignore[arg-type]
    images = read_uploads(ctx, [str(path), None, None], "en")
    return build_image_request(settings, model=MODEL, prompt="make it blue", images=list(images), **FIELDS)


ENTRY_POINTS = {"cli": through_cli, "api": through_api, "ui": through_ui}


def comparable(request: Any) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """The request's fields (minus what each edge names differently) and its images' bytes and pixels."""
    fields = request.model_dump(exclude={"images", "seed"})
    images = [(i.sha256, i.format, i.source_mode, i.image.mode, i.image.tobytes()) for i in request.images]
    return fields, images


@pytest.mark.parametrize(
    ("data", "pixel"),
    [(transparent_red(), (255, 255, 255)), (grey_16bit(), (156, 156, 156))],
    ids=["transparent-red-png", "grey-16bit-png"],
)
def test_every_entry_point_builds_the_same_request_and_pixels(settings, tmp_path, data, pixel) -> None:
    path = tmp_path / "input.png"
    path.write_bytes(data)
    built = {name: build(settings, path) for name, build in ENTRY_POINTS.items()}
    assert comparable(built["api"]) == comparable(built["cli"]) == comparable(built["ui"])
    assert {request.seed for request in built.values()} == {5}
    for request in built.values():
        # Transparency composited on white (what a viewer shows); 16 bits scaled, not clipped.
        assert request.images[0].image.getpixel((0, 0)) == pixel


def test_garbage_is_one_clean_line_with_a_code_everywhere(settings, tmp_path) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(b"just some text, not a picture")
    for name, build in ENTRY_POINTS.items():
        with pytest.raises(InvalidImage) as caught:
            build(settings, path)
        message = caught.value.message
        assert caught.value.code == "image_unreadable", name
        assert "\n" not in message and "BytesIO" not in message and "0x" not in message, (name, message)
        assert "is not an image (PNG, JPEG or WebP expected)" in message, (name, message)
