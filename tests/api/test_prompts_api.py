"""``POST /api/prompts/enhance`` and seed variety over HTTP, on a live server with the tiny models."""

from __future__ import annotations

import base64
import io

import httpx
import openai
from PIL import Image

from imagestudio.storage.metadata import read_metadata
from tests.api.conftest import assert_error_shape, png_bytes
from tests.helpers import wait_until


def test_enhance_a_prompt_then_generate_with_both_prompts_recorded(live) -> None:
    with live.client(timeout=120) as http:
        response = http.post(
            "/api/prompts/enhance",
            json={"prompt": "кот в шляпе", "model": "tiny-z-image", "seed": 4, "max_new_tokens": 16},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["original_prompt"] == "кот в шляпе"
        assert body["model"] == "tiny-z-image" and body["language"] == "ru"
        assert body["prompt"] and "\n" not in body["prompt"] and body["seconds"] > 0
        # The rewrite was a job of its own kind on the shared queue.
        kinds = [job["kind"] for job in http.get("/api/jobs").json()["jobs"]]
        assert "enhance" in kinds

        job = http.post(
            "/api/jobs",
            json={
                "kind": "generate",
                "model": "tiny-z-image",
                "prompt": body["prompt"],
                "original_prompt": body["original_prompt"],
                "variety": 0.25,
                "seed": 1,
            },
        )
        assert job.status_code == 202, job.text
        assert job.json()["request"]["variety"] == 0.25
        job_id = job.json()["id"]

        def ended() -> dict | None:
            status = http.get(f"/api/jobs/{job_id}").json()
            return status if status["state"] in ("done", "failed", "cancelled") else None

        status = wait_until(ended, 60, "the job to end")
        assert status["state"] == "done", status
        path = live.services.history.image_file(status["images"][0]["id"])
        meta = read_metadata(path)
        assert (meta["prompt"], meta["original_prompt"]) == (body["prompt"], "кот в шляпе")
        assert meta["variety"] == 0.25


def test_enhance_an_edit_instruction_with_pictures(live) -> None:
    picture = "data:image/png;base64," + base64.b64encode(png_bytes(64, 48)).decode("ascii")
    with live.client(timeout=120) as http:
        response = http.post(
            "/api/prompts/enhance",
            json={
                "prompt": "make Picture 1 blue",
                "model": "tiny-qwen-image-edit",
                "images": [picture],
                "language": "en",
                "max_new_tokens": 16,
            },
        )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "tiny-qwen-image-edit"


def test_bad_enhance_requests_are_one_line_errors(live) -> None:
    picture = base64.b64encode(png_bytes()).decode("ascii")
    with live.client(timeout=60) as http:
        cases = [
            ({"prompt": ""}, "prompt"),
            ({"prompt": "x", "model": "tiny-z-image", "images": [picture]}, "images"),
            ({"prompt": "x", "model": "tiny-qwen-image-edit", "images": ["not base64!"]}, "images[0]"),
            ({"prompt": "x", "max_new_tokens": 5}, "max_new_tokens"),
            ({"prompt": "x", "language": "de"}, "language"),
            ({"prompt": "x", "temperature": 2}, "temperature"),
            # JSON integers are strict, as everywhere in the API: a boolean is no seed (schema fuzzing
            # found it taken as 0, the job then queued for a model that was not there).
            ({"prompt": "x", "model": "tiny-z-image", "seed": False}, "seed"),
            ({"prompt": "x", "model": "tiny-z-image", "max_new_tokens": "64"}, "max_new_tokens"),
        ]
        for body, param in cases:
            assert_error_shape(http.post("/api/prompts/enhance", json=body), 400, param=param)
        missing = http.post("/api/prompts/enhance", json={"prompt": "x", "model": "z-image-turbo"})
        assert missing.status_code in (400, 503), missing.text
        assert_error_shape(missing, missing.status_code)


def test_variety_through_the_openai_client_extra_body(live) -> None:
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0, timeout=120)

    def image(variety: float | None) -> bytes:
        extra = {"seed": 9} if variety is None else {"seed": 9, "variety": variety}
        result = client.images.generate(model="tiny-z-image", prompt="fox", size="64x64", extra_body=extra)
        return base64.b64decode(result.data[0].b64_json)

    def pixels(data: bytes) -> bytes:
        return Image.open(io.BytesIO(data)).convert("RGB").tobytes()

    off, varied, again = image(None), image(0.5), image(0.5)
    assert pixels(varied) == pixels(again)
    assert pixels(varied) != pixels(off)
    with httpx.Client(timeout=30) as http:
        bad = http.post(
            f"{live.url}/v1/images/generations", json={"prompt": "fox", "model": "tiny-z-image", "variety": 3}
        )
    assert_error_shape(bad, 400, param="variety")
