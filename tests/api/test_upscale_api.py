"""Upscaling over the native job API: a job of kind ``upscale`` with the picture as base64."""

from __future__ import annotations

import base64

from tests.api.conftest import assert_error_shape, png_bytes, sse_events, upscaled_image


def test_upscale_job_runs_and_lands_in_history(live) -> None:
    picture = base64.b64encode(png_bytes(40, 24, color="teal")).decode()
    with live.client() as http:
        response = http.post(
            "/api/jobs",
            json={
                "kind": "upscale",
                "image": picture,
                "upscaler": "tiny-upscaler",
                "scale": 2,
                "prompt": "лиса",
            },
        )
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["kind"] == "upscale"
        assert job["model"] == "tiny-upscaler"
        assert job["request"]["upscale_by"] == 2
        upscaled_image(http, job["id"], "лиса", (80, 48))


def test_upscale_refusals_are_one_line_400s(live) -> None:
    picture = base64.b64encode(png_bytes(40, 24)).decode()
    with live.client() as http:
        cases = [
            ({"upscaler": "nope"}, "upscaler", "unknown upscaler 'nope'"),
            ({"upscaler": "tiny-upscaler", "scale": 9}, "upscale.scale", None),
            ({"upscaler": "tiny-upscaler", "image": "%%%"}, "image", "not valid base64"),
        ]
        for fields, param, text in cases:
            body = {"kind": "upscale", "image": picture, **fields}
            error = assert_error_shape(http.post("/api/jobs", json=body), 400, param=param)
            if text is not None:
                assert text in error["message"]


def test_generate_job_with_a_control_block_and_a_hires_block(live) -> None:
    import io

    from PIL import Image

    square = Image.new("RGB", (64, 64), "black")
    square.paste((255, 255, 255), (16, 16, 48, 48))
    buffer = io.BytesIO()
    square.save(buffer, format="PNG")
    control = {"type": "canny", "image": base64.b64encode(buffer.getvalue()).decode(), "weight": 0.7}
    body = {"kind": "generate", "model": "tiny-z-image", "prompt": "a house", "width": 64, "height": 64}
    with live.client() as http:
        response = http.post("/api/jobs", json={**body, "steps": 2, "control": control})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["request"]["control"]["type"] == "canny"
        assert job["request"]["control"]["image"]["width"] == 64
        assert sse_events(http, f"/api/jobs/{job['id']}/events")[-1][0] == "done"

        # A depth map, made by the tiny detector when the job runs.
        response = http.post("/api/jobs", json={**body, "steps": 2, "control": {**control, "type": "depth"}})
        assert response.status_code == 202, response.text
        assert sse_events(http, f"/api/jobs/{response.json()['id']}/events")[-1][0] == "done"

        error = assert_error_shape(
            http.post("/api/jobs", json={**body, "control": {**control, "weight": 0.95}}), 400
        )
        assert "0.65..0.8" in error["message"]

        hires = {"scale": 2, "upscaler": "tiny-upscaler", "steps": 2}
        response = http.post("/api/jobs", json={**body, "steps": 2, "hires": hires})
        assert response.status_code == 202, response.text
        events = sse_events(http, f"/api/jobs/{response.json()['id']}/events")
        assert events[-1][0] == "done"
        [image] = events[-1][1]["images"]
        assert (image["width"], image["height"]) == (128, 128)
        error = assert_error_shape(http.post("/api/jobs", json={**body, "hires": {"scale": 9}}), 400)
