"""The tolerant OpenAI edge: model aliases and ``auto``, output formats, streaming, retries, and the
request bodies real clients (Open WebUI, LibreChat, LiteLLM) send, all against a live loopback server."""

from __future__ import annotations

import base64
import io
import logging
import struct
import threading
import time

import httpx
import openai
import pytest
from PIL import Image

from imagestudio.storage.formats import read_user_comment
from imagestudio.storage.metadata import read_metadata
from tests.api.conftest import assert_error_shape, png_bytes
from tests.helpers import wait_until

#: Tests run on the tiny models: ``auto`` and the OpenAI names pick them here.
TINY_AUTO = {
    "auto_generate_model": "tiny-z-image",
    "auto_edit_model": "tiny-qwen-image-edit",
    "auto_inpaint_model": "tiny-z-image",
}


@pytest.fixture
def tiny_live(serve):
    return serve(server=dict(TINY_AUTO))


def client_for(live, **kwargs) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", timeout=120, **kwargs)


def decoded(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def test_dall_e_3_with_webp_output_gets_a_webp_from_the_auto_model(tiny_live) -> None:
    result = client_for(tiny_live).images.generate(
        model="dall-e-3", prompt="a red fox", size="64x64", output_format="webp", response_format="b64_json"
    )
    [item] = result.data
    image = decoded(item.b64_json)
    assert image.format == "WEBP" and image.size == (64, 64)
    assert result.output_format == "webp"
    assert result.model_extra["model"] == "tiny-z-image"
    # The stored file stays a PNG; the choice is in its metadata.
    meta = read_metadata(tiny_live.services.history.image_file(item.model_extra["id"]))
    assert meta["model"] == "tiny-z-image"
    assert meta["client"]["model"] == "dall-e-3"
    assert meta["client"]["output_format"] == "webp"


@pytest.mark.parametrize("name", ["auto", "gpt-image-1", "gpt-image-1-mini", "gpt-image-2", "dall-e-2", None])
def test_auto_and_aliases_pick_the_model_by_task(tiny_live, name) -> None:
    kwargs = {} if name is None else {"model": name}
    result = client_for(tiny_live).images.generate(
        prompt="x", size="64x64", response_format="b64_json", **kwargs
    )
    assert result.model_extra["model"] == "tiny-z-image"
    edit = client_for(tiny_live).images.edit(
        image=("a.png", png_bytes()),
        prompt="x",
        response_format="b64_json",
        extra_body={"steps": 2},
        **kwargs,
    )
    assert edit.model_extra["model"] == "tiny-qwen-image-edit"
    mask = png_bytes(mode="RGBA", color=(0, 0, 0, 0))
    inpaint = client_for(tiny_live).images.edit(
        image=("a.png", png_bytes()), mask=("m.png", mask), prompt="x", response_format="b64_json", **kwargs
    )
    assert inpaint.model_extra["model"] == "tiny-z-image"


def test_a_real_model_id_keeps_its_strict_meaning(tiny_live) -> None:
    # z-image-turbo is not on this machine: naming it is a 503, never a silent switch to the tiny model.
    with pytest.raises(openai.InternalServerError) as caught:
        client_for(tiny_live).images.generate(model="z-image-turbo", prompt="x", size="512x512")
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_an_alias_can_name_a_model_in_the_config(serve) -> None:
    live = serve(server={**TINY_AUTO, "model_aliases": {"dall-e-3": "tiny-z-image", "house": "auto"}})
    result = client_for(live).images.generate(model="house", prompt="x", size="64x64")
    assert result.model_extra["model"] == "tiny-z-image"


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_sd_parsers_reads_the_parameters_of_every_output_format(tiny_live, tmp_path, fmt) -> None:
    from sd_parsers import ParserManager

    result = client_for(tiny_live).images.generate(
        model="tiny-z-image",
        prompt="лиса в снегу",
        size="64x48",
        output_format=fmt,
        output_compression=80,
        extra_body={"seed": 42, "steps": 3},
    )
    data = base64.b64decode(result.data[0].b64_json)
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(data)
    with Image.open(path) as image:
        assert image.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]
        if fmt != "png":
            assert read_user_comment(image).startswith("лиса в снегу\n")
    info = ParserManager().parse(path)
    assert info is not None
    assert [prompt.value for prompt in info.prompts] == ["лиса в снегу"]
    [sampler] = info.samplers
    assert sampler.parameters["seed"] == "42" and sampler.parameters["steps"] == "3"
    assert sampler.model is not None and sampler.model.name == "tiny-z-image"
    assert info.metadata["Size"] == "64x48"


def test_known_openai_fields_are_recorded_and_unknown_ones_logged_for_json_and_multipart(
    tiny_live, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="imagestudio.api.edits")
    body = {
        "model": "gpt-image-1",
        "prompt": "x",
        "size": "64x64",
        "quality": "xhigh",
        "style": "natural",
        "background": "opaque",
        "moderation": "low",
        "user": "u-1",
        "safety_identifier": "s-1",
        "brand_new_field": {"a": 1},
    }
    with tiny_live.client() as http:
        response = http.post("/v1/images/generations", json=body)
        assert response.status_code == 200, response.text
        image_id = response.json()["data"][0]["id"]
        meta = read_metadata(tiny_live.services.history.image_file(image_id))
        assert meta["client"] == {
            "model": "gpt-image-1",
            "quality": "xhigh",
            "style": "natural",
            "background": "opaque",
            "moderation": "low",
            "user": "u-1",
            "safety_identifier": "s-1",
        }
        edit = http.post(
            "/v1/images/edits",
            data={
                "prompt": "x",
                "quality": "max",
                "input_fidelity": "high",
                "brand_new_form_field": "1",
                "steps": "2",
            },
            files=[("image", ("a.png", png_bytes(), "image/png"))],
        )
        assert edit.status_code == 200, edit.text
        meta = read_metadata(tiny_live.services.history.image_file(edit.json()["data"][0]["id"]))
        assert meta["client"]["quality"] == "max" and meta["client"]["input_fidelity"] == "high"
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "brand_new_field" in logged and "brand_new_form_field" in logged


def test_transparent_background_is_refused_naming_the_field_for_both_routes(tiny_live) -> None:
    with tiny_live.client() as http:
        generate = http.post(
            "/v1/images/generations", json={"prompt": "x", "size": "64x64", "background": "transparent"}
        )
        edit = http.post(
            "/v1/images/edits",
            data={"prompt": "x", "background": "transparent"},
            files=[("image", ("a.png", png_bytes(), "image/png"))],
        )
    for response in (generate, edit):
        assert "transparent" in assert_error_shape(response, 400, param="background")["message"]
        assert response.headers["x-should-retry"] == "false"
    assert tiny_live.services.queue.stats().queued == 0


def _events(stream) -> list:
    return list(stream)


def test_streaming_generation_yields_partial_images_then_the_image(tiny_live) -> None:
    stream = client_for(tiny_live).images.generate(
        model="dall-e-3",
        prompt="a lighthouse",
        size="64x64",
        stream=True,
        partial_images=2,
        extra_body={"steps": 6},
    )
    events = _events(stream)
    kinds = [event.type for event in events]
    assert kinds[-1] == "image_generation.completed", kinds
    partials = [event for event in events if event.type == "image_generation.partial_image"]
    assert 1 <= len(partials) <= 2, kinds
    assert [event.partial_image_index for event in partials] == list(range(len(partials)))
    assert all(decoded(event.b64_json).format == "PNG" for event in partials)
    completed = events[-1]
    image = decoded(completed.b64_json)
    assert image.size == (64, 64) and completed.size == "64x64"
    assert completed.usage is not None and completed.output_format == "png"


def test_streaming_edit_yields_partial_images_then_the_image_in_the_asked_format(tiny_live) -> None:
    stream = client_for(tiny_live).images.edit(
        model="gpt-image-1",
        image=("a.png", png_bytes(64, 64)),
        prompt="make it blue",
        stream=True,
        partial_images=2,
        output_format="jpeg",
        extra_body={"steps": 6},
    )
    events = _events(stream)
    kinds = [event.type for event in events]
    assert kinds[0] == "image_edit.partial_image" and kinds[-1] == "image_edit.completed", kinds
    assert decoded(events[-1].b64_json).format == "JPEG"


def test_a_failing_stream_ends_with_an_error_the_sdk_raises(tiny_live) -> None:
    # Validation errors come before the stream starts (plain 400); a job that fails mid-way ends the
    # stream with an error event. A cancelled job is the simplest failure to provoke.
    client = client_for(tiny_live)
    stream = client.images.generate(
        model="tiny-z-image", prompt="x", size="256x256", stream=True, partial_images=1,
        extra_body={"steps": 200},
    )  # fmt: skip

    def cancel_running() -> None:
        queue = tiny_live.services.queue
        running = wait_until(
            lambda: [job for job in queue.jobs() if job.state.value == "running"], 60, "a run"
        )
        queue.cancel(running[0].id)

    threading.Thread(target=cancel_running, daemon=True).start()
    with pytest.raises(openai.APIError) as caught:
        _events(stream)
    assert "cancelled" in str(caught.value)


def test_errors_a_retry_cannot_fix_are_sent_once_by_the_sdk(tiny_live) -> None:
    sent: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    client = openai.OpenAI(base_url=f"{tiny_live.url}/v1", api_key="x", http_client=http)  # default retries
    assert client.max_retries == 2
    with pytest.raises(openai.InternalServerError):
        client.images.generate(model="z-image-turbo", prompt="x", size="512x512")
    assert sent == ["/v1/images/generations"]
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model="tiny-z-image", prompt="x", size="65x64")
    assert len(sent) == 2


def test_a_timed_out_request_cancels_its_job_and_is_not_retried(serve) -> None:
    live = serve(server={**TINY_AUTO, "request_timeout_s": 1})
    sent: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", http_client=http)
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.generate(model="tiny-z-image", prompt="x", size="256x256", extra_body={"steps": 200})
    assert caught.value.status_code == 504
    assert sent == ["/v1/images/generations"]
    jobs = live.services.queue.jobs()
    assert len(jobs) == 1
    wait_until(lambda: live.services.queue.jobs()[0].state.value != "running", 60, "the job to stop")
    assert live.services.queue.jobs()[0].state.value == "cancelled"


# --------------------------------------------------------------------------- real clients' bodies


def test_open_webui_openai_engine_generation_body(tiny_live) -> None:
    # backend/open_webui/routers/images.py: model (default dall-e-2), prompt, n, size, response_format
    body = {"model": "dall-e-2", "prompt": "a cat", "n": 1, "size": "512x512", "response_format": "b64_json"}
    with tiny_live.client() as http:
        response = http.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    assert decoded(response.json()["data"][0]["b64_json"]).size == (512, 512)


def test_open_webui_url_mode_body_without_response_format(tiny_live) -> None:
    # For models matching its URL-response pattern Open WebUI leaves response_format out and GETs the url.
    body = {"model": "dall-e-2", "prompt": "a cat", "n": 1, "size": "256x256"}
    with tiny_live.client() as http:
        response = http.post("/v1/images/generations", json=body)
        assert response.status_code == 200, response.text
        url = response.json()["data"][0]["url"]
        fetched = http.get(url)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")


def test_open_webui_openai_engine_edit_body(tiny_live) -> None:
    # The edit form Open WebUI posts: model, prompt, n, response_format as text fields, the picture as
    # "image" (one) or "image[]" (several), named <uuid>.<ext>.
    data = {"model": "gpt-image-1", "prompt": "make it night", "n": "1", "response_format": "b64_json"}
    files = [("image", ("6f1c2a.png", png_bytes(64, 64), "image/png"))]
    with tiny_live.client() as http:
        response = http.post("/v1/images/edits", data=data, files=files)
        several = http.post(
            "/v1/images/edits",
            data=data,
            files=[("image[]", (f"{i}.png", png_bytes(64, 64, color=c), "image/png")) for i, c in
                   enumerate(["red", "blue"])],
        )  # fmt: skip
    assert response.status_code == 200, response.text
    assert several.status_code == 200, several.text
    assert decoded(response.json()["data"][0]["b64_json"]).format == "PNG"


def test_librechat_dalle3_tool_body_reads_data_0_url(tiny_live) -> None:
    # api/app/clients/tools/structured/DALLE3.js: model dall-e-3 hard-coded, quality, style, size, n: 1,
    # no response_format (so OpenAI's dall-e default, a URL), then data[0].url is downloaded.
    body = {"model": "dall-e-3", "quality": "standard", "style": "vivid", "size": "1024x1024",
            "prompt": "a lighthouse at dusk", "n": 1}  # fmt: skip
    with tiny_live.client(timeout=300) as http:
        response = http.post("/v1/images/generations", json=body)
        assert response.status_code == 200, response.text
        url = response.json()["data"][0]["url"]
        image = Image.open(io.BytesIO(http.get(url).content))
    assert image.size == (1024, 1024)


def test_litellm_style_webp_request(tiny_live) -> None:
    body = {"model": "gpt-image-1", "prompt": "x", "size": "64x64", "output_format": "webp", "n": 1}
    with tiny_live.client() as http:
        response = http.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    assert decoded(response.json()["data"][0]["b64_json"]).format == "WEBP"


# --------------------------------------------------------------------------- uploads


def exif_block(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A little-endian EXIF block (``Exif\\0\\0`` + TIFF) with the given IFD0 entries, values inline."""
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def with_exif(fmt: str, exif: bytes, size: tuple[int, int] = (64, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format=fmt, exif=exif)
    return buffer.getvalue()


#: Orientation 6 (rotate) plus XResolution, a RATIONAL tag, stored as text: Pillow's EXIF transpose
#: raised ``TypeError: bad operand type for abs(): 'str'`` on it (HTTP 500 before).
BAD_RATIONAL = exif_block([(0x0112, 3, 1, struct.pack("<H", 6)), (0x011A, 2, 4, b"abc\x00")])
#: Two cases a fuzzer found (bytes flipped in a small EXIF block): Pillow's transpose of a WebP raises
#: ``struct.error`` on the first and ``SyntaxError`` (bad TIFF header) on the second.
STRUCT_ERROR = bytes.fromhex(
    "45786966000049492a000800000003b6120103000100000006000000430105000100000032000000698704000100"
    "000032000000000000000000000017000000010086920700044b00006162636400000000"
)
BAD_HEADER = bytes.fromhex(
    "4578696600004949fd0008000000030012010300010000000600001a1a01050001000000323500006987040001000000"
    "32000000000053000000000000000000010086920700040000006162636400000000"
)


@pytest.mark.parametrize(
    ("fmt", "exif"),
    [("JPEG", BAD_RATIONAL), ("WEBP", BAD_RATIONAL), ("WEBP", STRUCT_ERROR), ("WEBP", BAD_HEADER)],
    ids=["jpeg-type-error", "webp-type-error", "webp-struct-error", "webp-bad-header"],
)
def test_malformed_exif_costs_the_rotation_not_the_request(tiny_live, caplog, fmt, exif) -> None:
    caplog.set_level(logging.WARNING)
    files = [("image", (f"photo.{fmt.lower()}", with_exif(fmt, exif), f"image/{fmt.lower()}"))]
    with tiny_live.client() as http:
        data = {"prompt": "x", "model": "tiny-qwen-image-edit", "steps": "2"}
        response = http.post("/v1/images/edits", data=data, files=files)
    assert response.status_code == 200, response.text
    assert "EXIF orientation ignored" in caplog.text


def test_big_uploads_are_decoded_off_the_event_loop(serve) -> None:
    # Three 6300x6300 PNGs and a mask (a few hundred kB, within the limits) take a second or more to
    # decode, one at a time here; /healthz must answer meanwhile. The request is refused after decoding
    # (a mask means Z-Image inpainting, which takes one picture), so no job runs.
    live = serve(server={**TINY_AUTO, "max_concurrent_decodes": 1})
    buffer = io.BytesIO()
    Image.new("RGB", (6300, 6300), "white").save(buffer, format="PNG")
    big = buffer.getvalue()
    files = [("image[]", (f"{i}.png", big, "image/png")) for i in range(3)]
    files.append(("mask", ("mask.png", big, "image/png")))
    result: dict[str, object] = {}

    def upload() -> None:
        started = time.monotonic()
        with live.client(timeout=300) as http:
            result["response"] = http.post("/v1/images/edits", data={"prompt": "x"}, files=files)
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=upload)
    thread.start()
    slowest = 0.0
    with live.client() as http:
        # Sampled for the upload's whole life (a sample before it reaches the server costs nothing).
        while thread.is_alive():
            started = time.monotonic()
            assert http.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.05)
    thread.join()
    assert_error_shape(result["response"], 400, param="image")  # type: ignore[arg-type]
    assert result["seconds"] > 1.0, "the decodes were expected to take a while"
    # Decoding on the event loop stalled /healthz for (nearly) all of the upload's time; off the loop
    # it waits at most for a thread switch. A bound relative to the decode time stays honest on a busy
    # machine, where every request is slower.
    bound = max(1.0, 0.4 * float(result["seconds"]))  # type: ignore[arg-type]
    assert slowest < bound, f"/healthz took {slowest:.2f}s during {result['seconds']:.1f}s of decoding"


def _claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""
    import zlib

    data = bytearray(png_bytes(8, 8))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize(("width", "height"), [(9000, 9000), (20000, 20000)], ids=["ours", "pillows"])
def test_pixel_limits_are_named_by_the_setting_not_by_pillow(serve, width, height) -> None:
    # 81 M pixels is past our limit only; 400 M is past Pillow's own bomb guard too: the same answer.
    live = serve(server={**TINY_AUTO, "max_upload_pixels": 1_000_000})
    files = [("image", ("bomb.png", _claiming(width, height), "image/png"))]
    with live.client() as http:
        response = http.post("/v1/images/edits", data={"prompt": "x"}, files=files)
    error = assert_error_shape(response, 400, param="image[0]")
    assert "the limit is 1,000,000 (server.max_upload_pixels)" in error["message"]
    assert error["code"] == "image_too_many_pixels"
    assert "Pillow" not in error["message"] and "DecompressionBomb" not in error["message"]
