"""Pose, mlsd and HED control over the native job API (a live server): the maps made when the job runs,
and a picture without a person failing its job in one line."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, ImageDraw

from tests.api.conftest import sse_events

BODY = {
    "kind": "generate", "model": "tiny-z-image", "prompt": "a dancer", "width": 64, "height": 64, "steps": 2,
}  # fmt: skip


def _photo() -> str:
    image = Image.new("RGB", (64, 64), (20, 30, 60))
    draw = ImageDraw.Draw(image)
    draw.ellipse((24, 4, 40, 20), fill=(220, 180, 140))
    draw.rectangle((22, 22, 42, 60), fill=(200, 60, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_pose_mlsd_and_hed_jobs_run(live) -> None:
    control = {"image": _photo(), "weight": 0.7}
    with live.client() as http:
        for kind in ("pose", "mlsd", "hed"):
            response = http.post("/api/jobs", json={**BODY, "control": {**control, "type": kind}})
            assert response.status_code == 202, response.text
            assert response.json()["request"]["control"]["type"] == kind
            events = sse_events(http, f"/api/jobs/{response.json()['id']}/events")
            assert events[-1][0] == "done", events[-1]
        items = http.get("/api/history", params={"q": "dancer"}).json()["items"]
        assert sorted(item["parameters"]["control"]["type"] for item in items) == ["hed", "mlsd", "pose"]


def test_a_picture_without_a_person_fails_its_job_in_one_line(serve, shared_models_dir, tmp_path) -> None:
    from imagestudio.models.detectors import DETECTORS_DIR, build_tiny_person

    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny-z-image").symlink_to(Path(shared_models_dir) / "tiny-z-image", target_is_directory=True)
    build_tiny_person(models / DETECTORS_DIR / "tiny-person", finds_people=False)  # finds no one
    live = serve(storage={"models_dir": str(models)})
    with live.client() as http:
        response = http.post("/api/jobs", json={**BODY, "control": {"type": "pose", "image": _photo()}})
        assert response.status_code == 202, response.text
        kind, failure = sse_events(http, f"/api/jobs/{response.json()['id']}/events")[-1]
        assert kind == "failed", failure
        assert failure["message"].startswith("No person found in the control picture")
        assert "\n" not in failure["message"] and failure["param"] == "control.image"
        assert http.get("/healthz").json()["worker_alive"] is True
