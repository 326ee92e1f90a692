"""The same bytes and fields through the CLI, the HTTP API and the web UI give the same request and pixels.

Each entry point is driven through its own code: the CLI's ``edit_request`` (files on disk), the API's
upload decoder (bytes as they arrive in a multipart form), the UI's ``read_uploads`` (the files Gradio
stored). Three inputs used to differ between them: a transparent PNG, a 16-bit greyscale PNG, and bytes
that are not an image.

Img2img and inpainting are compared the same way between ``generate --init-image/--mask`` (the CLI's
``generate_request``) and the Generate page (``page_requests``, given what Gradio's image editor makes
of the files).
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
from imagestudio.cli.generate import generate_request
from imagestudio.errors import InvalidImage
from imagestudio.job_requests import build_image_request
from imagestudio.ui.common import UIContext
from imagestudio.ui.edit_page import read_uploads
from imagestudio.ui.generate_page import SOURCE_MODE, SOURCE_TYPE, page_requests
from imagestudio.ui.presets import SOURCE_SIZE
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


# ----------------------------------------------------------------- img2img and inpainting

IMG2IMG: dict[str, Any] = {"steps": 4, "seed": 5, "strength": 0.5, "count": 1}
Z_MODEL = "tiny-z-image"
#: The part of the picture the mask marks for repainting (left, top, right, bottom).
MASK_BOX = (8, 8, 24, 20)


def noisy_picture() -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(3).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_mask(folder: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    """The mask as the CLI takes it (white = repaint) and as painted on the page (brush strokes)."""
    mask = Image.new("L", size, 0)
    mask.paste(255, MASK_BOX)
    strokes = Image.new("RGBA", size, (0, 0, 0, 0))
    strokes.paste((225, 29, 72, 140), MASK_BOX)  # the page's half-transparent rose brush
    mask_path, strokes_path = folder / "mask.png", folder / "strokes.png"
    mask.save(mask_path)
    strokes.save(strokes_path)
    return mask_path, strokes_path


def cli_generate(
    settings: Any, picture: Path, mask: Path | None, _strokes: Path | None, model: str = Z_MODEL
) -> Any:
    return generate_request(
        settings, model=model, prompt="a red boat", init_image=picture, mask=mask, **IMG2IMG
    )


def generate_page(
    settings: Any, picture: Path, _mask: Path | None, strokes: Path | None, model: str = Z_MODEL
) -> Any:
    import gradio as gr
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    # Gradio's own preprocessing of the editor's files, configured as the page's editor is.
    editor = gr.ImageEditor(type=SOURCE_TYPE, image_mode=SOURCE_MODE)
    layers = [FileData(path=str(strokes))] if strokes is not None else []
    value = editor.preprocess(EditorData(background=FileData(path=str(picture)), layers=layers))
    ctx = UIContext(backend=_Backend(settings), texts=Texts.load())  # type: ignore[arg-type]
    fields = {key: IMG2IMG[key] for key in ("steps", "seed", "strength", "count")}
    (request,) = page_requests(
        ctx, "en", prompt="a red boat", model=model, size=SOURCE_SIZE, width=None, height=None,
        variety=0.0, improved=None, source=value, **fields,
    )  # fmt: skip
    return request


IMAGE_IN = {"cli": cli_generate, "ui": generate_page}


def pixels(image: Any) -> tuple[Any, ...] | None:
    return None if image is None else (image.image.mode, image.image.size, image.image.tobytes())


def same_request(request: Any) -> tuple[dict[str, Any], Any, Any]:
    """Fields and pixels; the page never sees the file's bytes (Gradio hands it a decoded picture), so
    the inputs' names and hashes are left out."""
    fields = request.model_dump(exclude={"init_image", "mask"})
    return fields, pixels(request.init_image), pixels(request.mask)


@pytest.mark.parametrize(
    ("data", "pixel"),
    [(transparent_red(), (255, 255, 255)), (noisy_picture(), None)],
    ids=["transparent-red-png", "noisy-rgb-png"],
)
@pytest.mark.parametrize("masked", [False, True], ids=["img2img", "inpaint"])
def test_img2img_and_inpaint_build_the_same_request_from_the_cli_and_the_generate_page(
    settings, tmp_path, data, pixel, masked
) -> None:
    picture = tmp_path / "start.png"
    picture.write_bytes(data)
    size = Image.open(picture).size
    mask, strokes = write_mask(tmp_path, size) if masked else (None, None)
    built = {name: build(settings, picture, mask, strokes) for name, build in IMAGE_IN.items()}
    assert same_request(built["cli"]) == same_request(built["ui"])
    for request in built.values():
        assert request.mode == ("inpaint" if masked else "img2img")
        assert (request.width, request.height, request.seed, request.strength) == (*size, 5, 0.5)
        if pixel is not None:  # transparency composited on white, as for the edit models
            assert request.init_image.image.getpixel((0, 0)) == pixel
        if masked:
            repaint = np.asarray(request.mask.image.convert("L")) >= 128
            assert repaint.sum() == (MASK_BOX[2] - MASK_BOX[0]) * (MASK_BOX[3] - MASK_BOX[1])


def test_a_generate_model_is_required_for_a_starting_picture_everywhere(settings, tmp_path) -> None:
    """The shared builder would make an edit of an edit model's id: `generate` and its page refuse it."""
    from imagestudio.errors import InvalidRequest

    picture = tmp_path / "start.png"
    picture.write_bytes(noisy_picture())
    for name, build in IMAGE_IN.items():
        with pytest.raises(InvalidRequest) as caught:
            build(settings, picture, None, None, model=MODEL)
        assert (caught.value.param, caught.value.code) == ("model", "wrong_task"), name
