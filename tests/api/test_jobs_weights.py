"""The native job API's ``weights``: a quantized variant runs and History records it; a bad one is a 400."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_error_shape
from tests.helpers import wait_until

GENERATE = {
    "kind": "generate",
    "model": "tiny-z-image",
    "prompt": "a cat",
    "width": 64,
    "height": 48,
    "steps": 2,
}


@pytest.mark.slow
def test_a_job_runs_the_requested_variant_and_history_shows_it(live) -> None:
    with live.client() as http:
        response = http.post("/api/jobs", json={**GENERATE, "weights": "gguf-q8_0"})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["request"]["weights"] == "gguf-q8_0"
        wait_until(lambda: http.get(f"/api/jobs/{job['id']}").json()["state"] == "done", timeout=300)
        [image] = http.get(f"/api/jobs/{job['id']}").json()["images"]
        [item] = [i for i in http.get("/api/history").json()["items"] if i["id"] == image["id"]]
        assert item["parameters"]["weights"] == "gguf-q8_0"


def test_an_unknown_variant_is_a_400_naming_the_valid_ones(live) -> None:
    with live.client() as http:
        error = assert_error_shape(
            http.post("/api/jobs", json={**GENERATE, "weights": "q4"}), 400, param="weights"
        )
        assert "no weights 'q4'" in error["message"] and "gguf-q4_0" in error["message"]
