"""Model states and downloads over HTTP, against a local hub on loopback (never the internet)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import assert_error_shape
from tests.helpers import wait_until
from tests.models.conftest import TEST_REPO, fake_hub, hub_online, hub_repo_dir  # noqa: F401 (fixtures)


def test_download_a_model_through_the_api(serve, fake_hub, hub_online, monkeypatch, tmp_path: Path) -> None:  # noqa: F811
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    live = serve(models={"z-image-turbo": {"repo": TEST_REPO}})
    live.services.downloads.endpoint = fake_hub.url  # what HF_ENDPOINT does for a fresh process
    with live.client() as http:
        states = {m["id"]: m for m in http.get("/api/models").json()["models"]}
        assert states["z-image-turbo"]["state"] == "missing"
        assert states["z-image-turbo"]["repo"] == TEST_REPO
        assert_error_shape(http.get("/api/models/z-image-turbo/download"), 404)

        started = http.post("/api/models/z-image-turbo/download")
        assert started.status_code == 202, started.text
        assert started.json()["model"] == "z-image-turbo"

        def finished() -> dict | None:
            body = http.get("/api/models/z-image-turbo/download").json()
            return body if body["status"] != "running" else None

        final = wait_until(finished, timeout=120, what="the download to end")
        assert final["status"] == "done", final["error"]
        progress = final["progress"]
        assert progress["done_bytes"] == progress["total_bytes"] > 0
        listing = http.get("/api/models").json()
        states = {m["id"]: m for m in listing["models"]}
        assert states["z-image-turbo"]["state"] == "present"
        assert [d["model"] for d in listing["downloads"]] == ["z-image-turbo"]
        assert fake_hub.gets(), "the files came from the local hub"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("post", "/api/models/tiny-z-image/download", 400),
        ("post", "/api/models/sdxl/download", 404),
        ("get", "/api/models/sdxl/download", 404),
        ("delete", "/api/models/qwen-image-edit-2511/download", 404),
    ],
)
def test_download_refusals(live, method: str, path: str, status: int) -> None:
    with live.client() as http:
        assert_error_shape(getattr(http, method)(path), status)


def test_download_a_weight_variant_through_the_api(
    serve,
    fake_hub,  # noqa: F811
    hub_online,  # noqa: F811
    monkeypatch,
    tmp_path: Path,
) -> None:
    from huggingface_hub import constants

    from imagestudio.registry import get_model
    from tests.models.test_variant_download import gguf_bytes

    q4 = get_model("z-image-turbo").variant("gguf-q4_k_m")
    assert q4.repo_id and q4.filename
    fake_hub.add_repo(q4.repo_id, files={q4.filename: gguf_bytes(tmp_path)})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    live = serve(models={"z-image-turbo": {"repo": TEST_REPO}})
    live.services.downloads.endpoint = fake_hub.url
    with live.client() as http:
        assert_error_shape(http.post("/api/models/z-image-turbo/download", json={"weights": "gguf-q9"}), 400)
        started = http.post("/api/models/z-image-turbo/download", json={"weights": "gguf-q4_k_m"})
        assert started.status_code == 202, started.text
        assert started.json()["weights"] == "gguf-q4_k_m"

        def finished() -> dict | None:
            body = http.get("/api/models/z-image-turbo/download").json()
            return body if body["status"] != "running" else None

        final = wait_until(finished, timeout=120, what="the download to end")
        assert final["status"] == "done", final["error"]
        z = {m["id"]: m for m in http.get("/api/models").json()["models"]}["z-image-turbo"]
        variants = {v["variant"]: v for v in z["variants"]}
        assert variants["gguf-q4_k_m"]["state"] == "present"
        assert variants["bf16"]["state"] == "missing"  # the base came without its transformer weights
        assert variants["gguf-q3_k_m"]["state"] == "missing" and variants["gguf-q3_k_m"]["download_bytes"] > 0
    fetched = {(s.repo, s.path) for s in fake_hub.gets()}
    assert (q4.repo_id, q4.filename) in fetched
    assert not any(p.startswith("transformer/") and p.endswith(".safetensors") for _, p in fetched)
