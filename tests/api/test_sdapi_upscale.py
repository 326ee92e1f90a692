"""A1111's hires fields (as SillyTavern and Open WebUI send them) and its Extras upscaling, over HTTP."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image

from tests.api.conftest import png_bytes


def decode(text: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(text)))
    image.load()
    return image


def test_txt2img_with_enable_hr_runs_the_hires_pass(live) -> None:
    body = {
        "prompt": "a lighthouse", "width": 64, "height": 48, "steps": 2, "seed": 5, "cfg_scale": 7,
        "enable_hr": True, "hr_scale": 2, "hr_upscaler": "tiny-upscaler", "denoising_strength": 0.5,
        "hr_second_pass_steps": 2, "override_settings": {"sd_model_checkpoint": "tiny-z-image"},
    }  # fmt: skip
    with live.client() as http:
        response = http.post("/sdapi/v1/txt2img", json=body, timeout=300)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert decode(answer["images"][0]).size == (128, 96)
        info = json.loads(answer["info"])
        assert info["denoising_strength"] == 0.5
        text = info["infotexts"][0]
        assert (
            "Size: 64x48" in text
            and "Hires upscale: 2, Hires steps: 2, Hires upscaler: Tiny upscaler" in text
        )

        # A client's own upscaler name (SillyTavern's default "Latent") means the default, and is recorded.
        listed = [item["name"] for item in http.get("/sdapi/v1/upscalers").json()]
        assert listed == ["None", "realesrgan-x4plus", "tiny-upscaler"]


def test_extra_single_image_upscales(live) -> None:
    body = {
        "image": base64.b64encode(png_bytes(40, 24)).decode(),
        "upscaling_resize": 2,
        "upscaler_1": "tiny-upscaler",
    }
    with live.client() as http:
        response = http.post("/sdapi/v1/extra-single-image", json=body, timeout=300)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert decode(answer["image"]).size == (80, 48)
        assert "Postprocess upscale by: 2, Postprocess upscaler: Tiny upscaler" in answer["html_info"]

        too_big = {**body, "upscaling_resize": 9}
        response = http.post("/sdapi/v1/extra-single-image", json=too_big)
        assert response.status_code == 422 or response.status_code == 400, response.text
        assert "Traceback" not in response.text
