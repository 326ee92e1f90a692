"""The OpenAI-compatible routes, driven by the official ``openai`` client and by raw HTTP."""

from __future__ import annotations

import base64
import hashlib
import io

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from imagestudio.storage.metadata import read_metadata
from tests.api.conftest import assert_error_shape, open_png, png_bytes


def client_for(live, api_key: str = "x") -> openai.OpenAI:
    # No retries: a 429 or 5xx must reach the test, not be retried away.
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=api_key, max_retries=0, timeout=120)


def test_generate_b64_png_with_the_openai_client(live) -> None:
    result = client_for(live).images.generate(
        model="tiny-z-image", prompt="кот", size="64x64", response_format="b64_json"
    )
    [item] = result.data
    image = open_png(base64.b64decode(item.b64_json))
    assert image.size == (64, 64)
    assert result.size == "64x64"
    assert item.url is None
    assert isinstance(result.created, int) and result.created > 0
    record = live.services.history.get_image(item.model_extra["id"])
    assert record.prompt == "кот"
    assert record.seed == item.model_extra["seed"]
    path = live.services.history.image_file(record.id)
    assert read_metadata(path)["prompt"] == "кот"


def test_generate_urls_with_extensions_then_fetch_them(live) -> None:
    result = client_for(live).images.generate(
        model="tiny-z-image",
        prompt="a red fox",
        size="48x32",
        n=2,
        response_format="url",
        extra_body={"seed": 11, "steps": 3},
    )
    assert [item.model_extra["seed"] for item in result.data] == [11, 12]
    with httpx.Client(timeout=30) as http:
        for item in result.data:
            assert item.b64_json is None
            assert item.url.startswith(f"{live.url}/api/images/")
            response = http.get(item.url)
            assert response.status_code == 200
            assert response.headers["content-type"] == "image/png"
            image = open_png(response.content)
            assert image.size == (48, 32)
    record = live.services.history.get_image(result.data[0].model_extra["id"])
    assert record.metadata["steps"] == 3


def test_same_seed_gives_same_pixels_defaults_come_from_config(live) -> None:
    client = client_for(live)

    def pixels() -> np.ndarray:
        item = client.images.generate(model="tiny-z-image", prompt="same", extra_body={"seed": 3}).data[0]
        image = open_png(base64.b64decode(item.b64_json))
        assert image.size == (64, 64)  # the test config's defaults
        return np.asarray(image)

    assert np.array_equal(pixels(), pixels())


def test_models_list_in_openai_shape(live) -> None:
    models = {model.id: model for model in client_for(live).models.list().data}
    assert {"z-image-turbo", "qwen-image-edit-2511", "tiny-z-image", "tiny-qwen-image-edit"} <= set(models)
    assert models["tiny-z-image"].object == "model"
    assert models["tiny-z-image"].model_extra["available"] is True
    assert models["z-image-turbo"].model_extra["available"] is False
    assert client_for(live).models.retrieve("tiny-z-image").id == "tiny-z-image"
    with pytest.raises(openai.NotFoundError):
        client_for(live).models.retrieve("dall-e-3")


def test_unknown_model_is_a_400_listing_the_valid_ones(live) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(live).images.generate(model="midjourney-v6", prompt="кот", size="64x64")
    error = caught.value.body
    assert error["param"] == "model"
    assert "midjourney-v6" in error["message"]
    assert "tiny-z-image" in error["message"] and "z-image-turbo" in error["message"]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"size": "65x64"}, "size", "multiple of 16"),
        ({"size": "64"}, "size", "size"),
        ({"size": "0x64"}, "size", "width"),
        ({"n": 0}, "n", "greater than or equal to 1"),
        ({"n": 17}, "n", "less than or equal to 16"),
        ({"prompt": "   "}, "prompt", "prompt is empty"),
        ({"prompt": ""}, "prompt", "at least 1 character"),
        ({"background": "transparent"}, "background", "transparent"),
        ({"output_format": "gif"}, "output_format", "png"),
        ({"output_compression": 101}, "output_compression", "less than or equal to 100"),
        ({"partial_images": 4}, "partial_images", "less than or equal to 3"),
        ({"guidance_scale": 2.5}, "guidance_scale", "not allowed"),
        ({"response_format": "png"}, "response_format", "b64_json"),
        ({"quality": "ultra"}, "quality", "quality"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"steps": "many"}, "steps", "integer"),
    ],
)
def test_bad_generation_requests_are_400_with_the_field(live, body, param, fragment) -> None:
    payload = {"model": "tiny-z-image", "prompt": "кот", "size": "64x64", **body}
    with live.client() as http:
        response = http.post("/v1/images/generations", json=payload)
    error = assert_error_shape(response, 400, param=param)
    assert fragment in error["message"]
    assert live.services.queue.stats().queued == 0


def test_malformed_json_and_missing_prompt_are_400(live) -> None:
    with live.client() as http:
        bad_json = http.post(
            "/v1/images/generations", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert "not valid JSON" in assert_error_shape(bad_json, 400)["message"]
        missing = http.post("/v1/images/generations", json={"model": "tiny-z-image"})
        assert "required" in assert_error_shape(missing, 400, param="prompt")["message"].lower()


def test_model_not_on_this_machine_is_503_with_the_download_command(live) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client_for(live).images.generate(model="z-image-turbo", prompt="кот", size="512x512")
    assert caught.value.status_code == 503
    assert "imagestudio models download z-image-turbo" in caught.value.body["message"]


def test_edit_with_two_images_through_the_openai_client(live) -> None:
    result = client_for(live).images.edit(
        model="tiny-qwen-image-edit",
        image=[("a.png", png_bytes(color="red")), ("b.png", png_bytes(color="blue"))],
        prompt="поменяй их местами",
        size="64x64",
        response_format="b64_json",
        extra_body={"steps": 2, "seed": 3},
    )
    [item] = result.data
    image = open_png(base64.b64decode(item.b64_json))
    assert image.size == (64, 64)
    record = live.services.history.get_image(item.model_extra["id"])
    meta = read_metadata(live.services.history.image_file(record.id))
    assert meta["prompt"] == "поменяй их местами"
    assert meta["model"] == "tiny-qwen-image-edit"
    assert (meta["seed"], meta["steps"]) == (3, 2)
    red, blue = (hashlib.sha256(png_bytes(color=c)).hexdigest() for c in ("red", "blue"))
    assert [entry["sha256"] for entry in meta["input_images"]] == [red, blue]


def edit(live, files, **data):
    with live.client() as http:
        return http.post("/v1/images/edits", data={"prompt": "edit it", **data}, files=files)


def test_edit_requests_are_validated_before_anything_else(serve) -> None:
    live = serve(server={"max_upload_pixels": 100 * 100})
    png = png_bytes()
    four = [("image[]", (f"{i}.png", png, "image/png")) for i in range(4)]
    error = assert_error_shape(edit(live, four, model="tiny-qwen-image-edit"), 400, param="image")
    assert "4 input images" in error["message"]
    assert error["code"] == "too_many_images"

    none = edit(live, [], model="tiny-qwen-image-edit")
    assert "at least one input image" in assert_error_shape(none, 400, param="image")["message"]

    text = [("image", ("notes.png", b"just some text, not a picture", "image/png"))]
    error = assert_error_shape(edit(live, text), 400, param="image[0]")
    assert error["message"] == "image[0] 'notes.png' is not an image (PNG, JPEG or WebP expected)"
    assert error["code"] == "image_unreadable"

    empty = [("image", ("empty.png", b"", "image/png"))]
    assert "empty" in assert_error_shape(edit(live, empty), 400, param="image[0]")["message"]

    truncated = [("image", ("cut.png", png[: len(png) // 2], "image/png"))]
    assert_error_shape(edit(live, truncated), 400, param="image[0]")

    gif = [("image", ("a.gif", _gif(), "image/gif"))]
    assert "PNG, JPEG or WebP" in assert_error_shape(edit(live, gif), 400, param="image[0]")["message"]

    huge = [("image", ("big.png", png_bytes(101, 100), "image/png"))]
    error = assert_error_shape(edit(live, huge), 400, param="image[0]")
    assert "max_upload_pixels" in error["message"]

    mask = ("mask", ("m.png", png_bytes(mode="RGBA", color=(0, 0, 0, 0)), "image/png"))
    on_edit_model = edit(live, [("image", ("a.png", png, "image/png")), mask], model="tiny-qwen-image-edit")
    assert "inpainting" in assert_error_shape(on_edit_model, 400, param="mask")["message"]

    wrong_aspect = ("mask", ("m.png", png_bytes(16, 32, mode="RGBA"), "image/png"))
    mismatch = edit(live, [("image", ("a.png", png, "image/png")), wrong_aspect], model="tiny-z-image")
    error = assert_error_shape(mismatch, 400, param="mask")
    assert "aspect ratios differ" in error["message"] and error["code"] == "mask_aspect"

    # a valid inpaint request runs (the whole mask is transparent: repaint everything)
    ok = edit(
        live,
        [("image", ("a.png", png, "image/png")), mask],
        model="tiny-z-image",
        n="2",
        size="64x64",
        steps="2",
    )
    assert ok.status_code == 200, ok.text
    assert [open_png(base64.b64decode(d["b64_json"])).size for d in ok.json()["data"]] == [(64, 64)] * 2


def test_uploads_over_the_byte_limit_are_413(serve) -> None:
    live = serve(server={"max_upload_mb": 0.05})
    big = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 50_000
    files = [("image", ("big.png", buffer.getvalue(), "image/png"))]
    assert_error_shape(edit(live, files, model="tiny-qwen-image-edit"), 413)

    # Without a Content-Length (chunked), the limit is enforced while reading.
    def chunks():
        for _ in range(20):
            yield b"x" * 10_000

    with live.client() as http:
        response = http.post("/api/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert_error_shape(response, 413)
    assert live.services.queue.worker_alive


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="GIF")
    return buffer.getvalue()


def test_a_text_field_where_a_file_belongs_is_named(live) -> None:
    with live.client() as http:
        response = http.post("/v1/images/edits", files={"prompt": (None, "x"), "image": (None, "not a file")})
    assert "image.0 must be a file" in assert_error_shape(response, 400, param="image.0")["message"]
