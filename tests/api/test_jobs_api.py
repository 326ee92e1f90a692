"""The native job API over real HTTP: submit, live progress (SSE), cancel, history, images, limits."""

from __future__ import annotations

import asyncio
import base64
import threading

import httpx
import pytest

from imagestudio.services import Services
from tests.api.conftest import BLOCKER, assert_error_shape, open_png, png_bytes, sse_events
from tests.helpers import wait_until

GENERATE = {"kind": "generate", "model": "tiny-z-image", "prompt": "кот в шляпе", "width": 64, "height": 48}


def submit(http: httpx.Client, **fields) -> dict:
    response = http.post("/api/jobs", json={**GENERATE, **fields})
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"].endswith(f"/api/jobs/{job['id']}")
    return job


def test_job_events_arrive_in_order_then_done_with_urls(live) -> None:
    with live.client() as http:
        blocker = submit(http, **BLOCKER)
        job = submit(http, steps=3, seed=21, count=2)
        assert job["state"] == "queued"
        assert job["queue_position"] >= 1
        assert job["request"]["seed"] == 21 and job["request"]["steps"] == 3  # resolved, defaults filled

        def release_blocker_once_queued(kind: str, data: dict) -> bool:
            # The blocker holds the worker, so this stream starts at "queued" and misses nothing.
            if kind == "queued":
                with live.client() as other:
                    other.delete(f"/api/jobs/{blocker['id']}")
            return False

        events = sse_events(http, f"/api/jobs/{job['id']}/events", until=release_blocker_once_queued)

        kinds = [kind for kind, _ in events]
        assert kinds[0] == "queued"
        assert kinds[-1] == "done"
        assert kinds.index("started") < kinds.index("step")
        steps = [(data["image"], data["step"]) for kind, data in events if kind == "step"]
        assert steps == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
        assert all(data["steps"] == 3 and data["images"] == 2 for kind, data in events if kind == "step")
        done = events[-1][1]
        assert [image["seed"] for image in done["images"]] == [21, 22]

        for image in done["images"]:
            response = http.get(image["url"])
            assert response.status_code == 200
            assert open_png(response.content).size == (64, 48)

        status = http.get(f"/api/jobs/{job['id']}").json()
        assert status["state"] == "done"
        assert status["progress"]["fraction"] == 1.0
        assert [image["id"] for image in status["images"]] == [image["id"] for image in done["images"]]
        assert http.get(f"/api/jobs/{blocker['id']}").json()["state"] == "cancelled"
        listed = [job["id"] for job in http.get("/api/jobs").json()["jobs"]]
        assert listed[:2] == [job["id"], blocker["id"]]  # finished, newest first

        # a stream opened after the end replays just the end
        assert [kind for kind, _ in sse_events(http, f"/api/jobs/{job['id']}/events")] == ["done"]


def test_history_search_fetch_and_delete(live) -> None:
    with live.client() as http:
        done = []
        for prompt in ("Кот в шляпе", "собака", "100% кот"):
            job = submit(http, prompt=prompt)
            done.append(sse_events(http, f"/api/jobs/{job['id']}/events")[-1])
        assert [kind for kind, _ in done] == ["done", "done", "done"]

        page = http.get("/api/history", params={"q": "КОТ"}).json()
        assert page["total"] == 2
        assert [item["prompt"] for item in page["items"]] == ["100% кот", "Кот в шляпе"]
        assert page["items"][0]["parameters"]["seed"] == page["items"][0]["seed"]
        assert http.get("/api/history", params={"q": "%"}).json()["total"] == 1

        first_page = http.get("/api/history", params={"limit": 2}).json()
        second_page = http.get("/api/history", params={"limit": 2, "offset": 2}).json()
        assert first_page["total"] == 3
        assert len(first_page["items"]) == 2 and len(second_page["items"]) == 1

        victim = page["items"][0]
        path = live.services.history.image_file(victim["id"])
        assert path.exists()
        deleted = http.delete(f"/api/images/{victim['id']}")
        assert deleted.json() == {"id": victim["id"], "object": "image", "deleted": True}
        assert not path.exists()
        assert_error_shape(http.get(f"/api/images/{victim['id']}"), 404, param="image_id")
        assert_error_shape(http.delete(f"/api/images/{victim['id']}"), 404)
        assert http.get("/api/history").json()["total"] == 2


def test_cancel_waiting_and_running_jobs(live) -> None:
    with live.client() as http:
        blocker = submit(http, **BLOCKER)
        waiting = submit(http)
        wait_until(
            lambda: http.get(f"/api/jobs/{blocker['id']}").json()["state"] == "running", what="blocker"
        )
        cancelled = http.delete(f"/api/jobs/{waiting['id']}").json()
        assert cancelled["state"] == "cancelled"
        running = http.delete(f"/api/jobs/{blocker['id']}").json()
        assert running["state"] in ("running", "cancelled")
        end = sse_events(http, f"/api/jobs/{blocker['id']}/events")[-1]
        assert end[0] == "cancelled"
        assert http.get(f"/api/jobs/{blocker['id']}").json()["images"] == []
        assert_error_shape(http.delete("/api/jobs/doesNotExist"), 404, param="job_id")
        assert_error_shape(http.get("/api/jobs/doesNotExist/events"), 404)
        # the worker goes on
        assert sse_events(http, f"/api/jobs/{submit(http)['id']}/events")[-1][0] == "done"


def test_a_client_that_disconnects_has_its_job_cancelled(live) -> None:
    with live.client() as http:
        blocker = submit(http, **BLOCKER)
        wait_until(
            lambda: http.get(f"/api/jobs/{blocker['id']}").json()["state"] == "running", what="blocker"
        )

        def impatient() -> None:
            body = {"model": "tiny-z-image", "prompt": "disconnect me", "size": "64x64"}
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{live.url}/v1/images/generations", json=body, timeout=1.5)

        thread = threading.Thread(target=impatient)
        thread.start()
        thread.join(30)

        def abandoned_state() -> str | None:
            jobs = http.get("/api/jobs").json()["jobs"]
            states = [job["state"] for job in jobs if job["prompt"] == "disconnect me"]
            return states[0] if states and states[0] == "cancelled" else None

        assert (
            wait_until(abandoned_state, timeout=30, what="the abandoned job to be cancelled") == "cancelled"
        )
        http.delete(f"/api/jobs/{blocker['id']}")


def test_request_timeout_cancels_and_answers_504(serve) -> None:
    live = serve(server={"request_timeout_s": 1.0})
    with live.client() as http:
        blocker = submit(http, **BLOCKER)
        response = http.post("/v1/images/generations", json={"model": "tiny-z-image", "prompt": "late"})
        error = assert_error_shape(response, 504)
        assert "request_timeout_s" in error["message"]
        [late] = [job for job in http.get("/api/jobs").json()["jobs"] if job["prompt"] == "late"]
        assert late["state"] == "cancelled"
        http.delete(f"/api/jobs/{blocker['id']}")


def test_flood_gets_only_200s_and_429s_and_the_worker_survives(serve) -> None:
    live = serve(server={"max_queue": 4})
    body = {
        "model": "tiny-z-image",
        "prompt": "flood",
        "size": "64x64",
        "steps": 20,
        "response_format": "b64_json",
    }

    async def flood() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=live.url, timeout=300, limits=limits) as client:
            return await asyncio.gather(
                *(client.post("/v1/images/generations", json=body) for _ in range(40))
            )

    responses = asyncio.run(flood())
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 5  # one running + max_queue waiting were accepted
    assert statuses.count(429) >= 1
    for response in responses:
        if response.status_code == 200:
            [item] = response.json()["data"]
            assert open_png(base64.b64decode(item["b64_json"])).size == (64, 64)
        else:
            assert int(response.headers["retry-after"]) >= 1
            assert_error_shape(response, 429)
    with live.client() as http:
        health = http.get("/healthz").json()
        assert health == {"status": "ok", "worker_alive": True}
        after = http.post("/v1/images/generations", json={**body, "steps": 2})
        assert after.status_code == 200
        accepted = [job for job in http.get("/api/jobs").json()["jobs"] if job["prompt"] == "flood"]
        assert len(accepted) == statuses.count(200) + 1
        assert {job["state"] for job in accepted} == {"done"}


def test_system_and_health(live) -> None:
    with live.client() as http:
        sse_events(http, f"/api/jobs/{submit(http)['id']}/events")
        system = http.get("/api/system").json()
        assert system["device"] == "cpu"
        assert system["loaded_model"]["id"] == "tiny-z-image"
        assert system["loaded_model"]["placement"] == "full"  # the memory plan on a CPU machine
        assert system["queue"] == {"running": None, "queued": 0, "max_queue": 16, "worker_alive": True}
        assert system["memory"]["ram_total_bytes"] > system["memory"]["ram_available_bytes"] > 0
        assert system["memory"]["accelerator"] is None
        assert {m["id"] for m in system["models"]} >= {"tiny-z-image", "tiny-qwen-image-edit"}
        assert http.get("/healthz").json()["status"] == "ok"


def test_edit_jobs_run_and_bad_ones_are_refused(live) -> None:
    png = base64.b64encode(png_bytes()).decode()
    with live.client() as http:
        body = {
            "kind": "edit",
            "model": "tiny-qwen-image-edit",
            "prompt": "swap",
            "images": [png, png],
            "steps": 2,
        }
        job = http.post("/api/jobs", json=body)
        assert job.status_code == 202, job.text
        events = sse_events(http, f"/api/jobs/{job.json()['id']}/events")
        assert events[-1][0] == "done", events[-1]
        status = http.get(f"/api/jobs/{job.json()['id']}").json()
        assert status["state"] == "done"
        assert [entry["name"] for entry in status["request"]["input_images"]] == ["images[0]", "images[1]"]
        bad = {**body, "images": ["!!! not base64 !!!"]}
        assert (
            "base64"
            in assert_error_shape(http.post("/api/jobs", json=bad), 400, param="images[0]")["message"]
        )
        four = {**body, "images": [png] * 4}
        assert_error_shape(http.post("/api/jobs", json=four), 400, param="images")
        no_kind = {key: value for key, value in GENERATE.items() if key != "kind"}
        assert_error_shape(http.post("/api/jobs", json=no_kind), 400)
        cfg_on_turbo = http.post(
            "/api/jobs/edits",
            data={"prompt": "swap", "model": "tiny-z-image", "true_cfg_scale": "4"},
            files=[("image", ("a.png", png_bytes(), "image/png"))],
        )
        assert_error_shape(cfg_on_turbo, 400, param="true_cfg_scale")
        multipart = http.post(
            "/api/jobs/edits",
            data={"prompt": "swap", "model": "tiny-qwen-image-edit", "steps": "2"},
            files=[("image", ("a.png", png_bytes(), "image/png"))],
        )
        assert multipart.status_code == 202, multipart.text


def test_unexpected_runner_error_is_a_generic_500_and_not_fatal(serve) -> None:
    def boom(request, on_step, cancel):
        raise RuntimeError("secret internal detail /home/user/path")

    live = serve(services_factory=lambda settings: Services.create(settings, handler=boom))
    with live.client() as http:
        response = http.post("/v1/images/generations", json={"model": "tiny-z-image", "prompt": "x"})
        error = assert_error_shape(response, 500)
        assert "secret" not in response.text and "RuntimeError" not in response.text
        assert error["type"] == "server_error"
        job = submit(http)
        failed = sse_events(http, f"/api/jobs/{job['id']}/events")[-1]
        assert failed[0] == "failed"
        assert "secret" not in failed[1]["message"]
        assert http.get("/healthz").json()["worker_alive"] is True


def test_framework_errors_are_openai_shaped(live) -> None:
    with live.client() as http:
        assert_error_shape(http.get("/no/such/route"), 404)
        not_allowed = http.put("/v1/models")
        assert_error_shape(not_allowed, 405)
        assert "GET" in not_allowed.headers["allow"]
        assert_error_shape(http.get("/api/images/..%2F..%2Fetc%2Fpasswd"), 404)
        assert_error_shape(http.get("/api/images/a.b"), 400, param="image_id")
        assert_error_shape(http.get("/api/history", params={"limit": 0}), 400, param="limit")
