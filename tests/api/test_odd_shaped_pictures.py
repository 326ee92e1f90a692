"""A valid 10000 x 1 PNG (within the pixel limit) sent to ``/v1/images/edits`` or A1111 ``img2img`` is a
400 naming the aspect limit, never a 500, and nothing is queued; the server goes on working."""

from __future__ import annotations

import base64

import openai
import pytest

from imagestudio.job_requests import MAX_INPUT_ASPECT
from tests.api.conftest import assert_error_shape, png_bytes

STRIP = png_bytes(10_000, 1, "white")


@pytest.fixture
def tiny_live(serve):
    return serve(server={"auto_edit_model": "tiny-qwen-image-edit", "auto_inpaint_model": "tiny-z-image"})


def test_openai_edits_refuse_a_strip_with_one_line(tiny_live) -> None:
    client = openai.OpenAI(base_url=f"{tiny_live.url}/v1", api_key="x", max_retries=0, timeout=120)
    for model in ("tiny-qwen-image-edit", "tiny-z-image"):
        with pytest.raises(openai.BadRequestError) as refused:
            client.images.edit(image=("strip.png", STRIP), prompt="x", model=model, extra_body={"steps": 2})
        message = refused.value.body["message"]
        assert "10000x1" in message and f"{MAX_INPUT_ASPECT}:1" in message
    with tiny_live.client() as http:
        answer = http.post(
            "/v1/images/edits",
            files={"image": ("strip.png", STRIP, "image/png")},
            data={"prompt": "x", "model": "tiny-qwen-image-edit"},
        )
        assert_error_shape(answer, 400, param="image")
        assert http.get("/api/jobs").json()["jobs"] == []


def test_a1111_img2img_refuses_a_strip_with_one_line(tiny_live) -> None:
    strip = base64.b64encode(STRIP).decode()
    with tiny_live.client() as http:
        for model in ("tiny-qwen-image-edit", "tiny-z-image"):
            answer = http.post(
                "/sdapi/v1/img2img",
                json={
                    "prompt": "x",
                    "init_images": [strip],
                    "steps": 2,
                    "override_settings": {"sd_model_checkpoint": model},
                },
            )
            assert answer.status_code == 400, answer.text
            detail = answer.json()["detail"]
            assert "10000x1" in detail and "\n" not in detail and "Traceback" not in answer.text
        assert http.get("/api/jobs").json()["jobs"] == []
        # Still working: an ordinary picture is edited.
        fine = http.post(
            "/sdapi/v1/img2img",
            json={
                "prompt": "x",
                "init_images": [base64.b64encode(png_bytes(48, 32)).decode()],
                "steps": 2,
                "override_settings": {"sd_model_checkpoint": "tiny-qwen-image-edit"},
            },
        )
        assert fine.status_code == 200, fine.text
