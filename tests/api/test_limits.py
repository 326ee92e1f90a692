"""Resource limits over real HTTP: each refusal a 4xx in OpenAI's error shape, each limit from config."""

from __future__ import annotations

import json
import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from imagestudio.storage.files import _umask
from tests.api.conftest import BLOCKER, assert_error_shape, png_bytes, sse_events
from tests.api.test_browser_attacks import (
    FILE_META,
    edit_call,
    file_urls,
    generate_call,
    gradio_call,
    improve_call,
    job_count,
    start_studio,
    stop_studio,
)
from tests.helpers import wait_until

GENERATE = {"kind": "generate", "model": "tiny-z-image", "prompt": "кот"}


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/images/generations", {"prompt": "кот", "n": "2"}, "n"),
        ("/v1/images/generations", {"prompt": "кот", "n": True}, "n"),
        ("/v1/images/generations", {"prompt": "кот", "seed": "7"}, "seed"),
        ("/api/jobs", {**GENERATE, "count": "2"}, "count"),
        ("/api/jobs", {**GENERATE, "steps": True}, "steps"),
        ("/api/jobs", {**GENERATE, "width": 64.0}, "width"),
    ],
)
def test_integer_fields_are_strict(live, path: str, body: dict, param: str) -> None:
    with live.client() as http:
        assert_error_shape(http.post(path, json=body), 400, param=param)


def test_prompt_and_image_count_limits_come_from_config(serve) -> None:
    live = serve(server={"max_prompt_chars": 100, "max_images_per_request": 2})
    with live.client() as http:
        long = http.post("/api/jobs", json={**GENERATE, "prompt": "к" * 101})
        assert "server.max_prompt_chars" in assert_error_shape(long, 400, param="prompt")["message"]
        negative = http.post("/api/jobs", json={**GENERATE, "negative_prompt": "x" * 101})
        assert_error_shape(negative, 400, param="negative_prompt")
        many = http.post("/v1/images/generations", json={"model": "tiny-z-image", "prompt": "кот", "n": 3})
        assert "server.max_images_per_request" in assert_error_shape(many, 400, param="n")["message"]
        assert http.post("/api/jobs", json={**GENERATE, "prompt": "к" * 100, "count": 2}).status_code == 202
        assert live.services.queue.stats().queued + (live.services.queue.stats().running is not None) >= 1
    with serve().client() as http:  # the default: a 10,000-character prompt is refused
        assert_error_shape(
            http.post("/api/jobs", json={**GENERATE, "prompt": "a" * 10_000}), 400, param="prompt"
        )


def test_one_client_may_not_fill_the_queue(serve) -> None:
    live = serve(server={"max_queued_per_client": 2, "max_queue": 10})
    with live.client() as http:
        ids = [http.post("/api/jobs", json=BLOCKER).json()["id"] for _ in range(2)]
        refused = http.post("/api/jobs", json=GENERATE)
        error = assert_error_shape(refused, 429)
        assert "server.max_queued_per_client" in error["message"]
        assert int(refused.headers["Retry-After"]) >= 1
        # A job without a client (the CLI's own queue) is not held to a client's share.
        from imagestudio.job_requests import GenerateRequest

        request = GenerateRequest.build(
            model="tiny-z-image", prompt="no client", width=64, height=64, steps=1
        )
        unowned = live.services.queue.submit(request.resolved(live.services.settings))
        for job_id in [*ids, unowned.id]:
            http.delete(f"/api/jobs/{job_id}")
        # Once its jobs are gone the client may submit again.
        for job_id in ids:
            live.services.queue.wait(job_id, timeout=120)
        assert http.post("/api/jobs", json=GENERATE).status_code == 202


def test_the_pages_and_the_api_share_one_clients_queue_share(
    tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path
) -> None:
    """The studio's pages run their jobs in Gradio's queue, outside the API's request: they name the
    browser's address themselves, and the queue holds it to the same share as the API's calls."""
    from imagestudio.ui.texts import Texts

    live = start_studio(tmp_path_factory.mktemp("shared-share"), shared_models_dir, max_queued_per_client=2)
    texts = Texts.load()
    full = texts.t("err.client_queue_full", "en", max=2)
    # A second loopback address is a second client on this machine (Linux routes all of 127/8 here).
    other_address = httpx.HTTPTransport(local_address="127.0.0.2")
    try:
        with live.client() as http, live.client(transport=other_address) as other:
            blockers = [http.post("/api/jobs", json=BLOCKER).json()["id"] for _ in range(2)]
            uploaded = http.post("/gradio_api/upload", files={"files": ("in.png", png_bytes(), "image/png")})
            picture = {"path": uploaded.json()[0], "meta": FILE_META, "orig_name": "in.png"}
            # The same browser's Generate and Edit pages and Improve prompt: refused, the reason beside
            # the button.
            for api_name, data in (
                ("generate", generate_call(http, None)),
                ("edit", edit_call(http, picture)),
                ("improve", improve_call(http)),
            ):
                events = gradio_call(http, api_name, data)
                assert events[-1][0] == "complete", events
                assert full in json.dumps(events[-1][1], ensure_ascii=False), events[-1]
            assert job_count(http) == 2
            # Another browser's page job is queued behind the first client's jobs, and runs.
            pool = ThreadPoolExecutor(1)
            call = pool.submit(gradio_call, other, "generate", generate_call(other, None))
            wait_until(lambda: job_count(http) == 3, what="the other browser's job")
            for job_id in blockers:
                http.delete(f"/api/jobs/{job_id}")
            events = call.result(timeout=300)
            pool.shutdown()
            assert events[-1][0] == "complete" and file_urls(events[-1][1]), events[-1]
            assert full not in json.dumps(events[-1][1], ensure_ascii=False)
    finally:
        stop_studio(live)


def test_event_streams_per_client_are_bounded(serve) -> None:
    live = serve(server={"max_event_streams_per_client": 2})
    with live.client() as http:
        job_id = http.post("/api/jobs", json=BLOCKER).json()["id"]
        path = f"/api/jobs/{job_id}/events"
        with http.stream("GET", path) as first, http.stream("GET", path) as second:
            assert first.status_code == second.status_code == 200
            third = http.get(path)
            error = assert_error_shape(third, 429)
            assert "server.max_event_streams_per_client" in error["message"]
        # Closed streams give their places back (the server notices the disconnect at its next event).
        http.delete(f"/api/jobs/{job_id}")

        def stream_answered() -> httpx.Response | None:
            answer = http.get(path)
            return answer if answer.status_code == 200 else None

        events = wait_until(stream_answered, 30, "a place for another stream")
        assert events.status_code == 200 and "cancelled" in events.text


def test_a_body_sent_too_slowly_is_408(serve) -> None:
    live = serve(server={"body_read_timeout_s": 1})
    # Streams read their request at once and then wait for hours: the deadline is not theirs. This one is
    # opened first and kept open (its job waits behind a long one) while a slow body runs into the
    # deadline; the 408 proves the deadline passed for the stream too, which must still be open.
    with live.client() as http, live.client() as watcher, ThreadPoolExecutor(1) as pool:
        long_job = {**GENERATE, "width": 1024, "height": 1024, "steps": 8, "count": 8}
        long_id = http.post("/api/jobs", json=long_job).json()["id"]
        job_id = http.post("/api/jobs", json={**GENERATE, "steps": 2}).json()["id"]
        opened = threading.Event()

        def first_event(kind: str, data: dict) -> bool:
            opened.set()
            return False

        stream = pool.submit(sse_events, watcher, f"/api/jobs/{job_id}/events", until=first_event)
        assert opened.wait(60), "the event stream never answered"
        answer = _slow_body_answer(live.url)
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "server.body_read_timeout_s" in answer
        assert not stream.done(), stream.result()
        assert http.delete(f"/api/jobs/{long_id}").status_code < 300
        assert [kind for kind, _ in stream.result(timeout=120)][-1] == "done"


def _slow_body_answer(url: str) -> str:
    """Start a POST whose body never arrives and return what the server answers (its whole JSON error)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 500\r\n\r\n{"kind": '
        )
        started = time.monotonic()
        conn.settimeout(60)
        data = b""
        while b"}" not in data:  # the whole JSON error, however the bytes are split
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        assert time.monotonic() - started < 30  # about 1 s, with room for a busy machine
    return data.decode()


def test_history_page_size_and_a_nul_query(serve) -> None:
    live = serve(server={"max_history_page": 10})
    with live.client() as http:
        job_id = http.post("/api/jobs", json=GENERATE).json()["id"]
        sse_events(http, f"/api/jobs/{job_id}/events")
        assert_error_shape(http.get("/api/history", params={"limit": 11}), 400, param="limit")
        assert http.get("/api/history", params={"limit": 10}).json()["total"] == 1
        nul = http.get("/api/history", params={"q": "\x00"})
        assert nul.status_code == 200 and nul.json()["total"] == 0, nul.text
        assert http.get("/api/history", params={"q": "%"}).json()["total"] == 0
        [item] = http.get("/api/history").json()["items"]
    path = live.services.history.image_file(item["id"])
    assert path is not None
    # An ordinary file, readable by others like anything the user makes (0644 under the usual umask).
    mode = Path(path).stat().st_mode
    assert stat.S_IMODE(mode) == 0o666 & ~_umask() and mode & stat.S_IROTH


def test_defaults_refuse_a_history_page_over_200(live) -> None:
    with live.client() as http:
        assert_error_shape(http.get("/api/history", params={"limit": 201}), 400, param="limit")
        assert http.get("/api/history", params={"limit": 200}).status_code == 200
        assert httpx.get(f"{live.url}/healthz").status_code == 200
