"""Live servers for API tests: uvicorn on a free 127.0.0.1 port, in a thread, with the tiny models.

``serve(server={...}, generation={...})`` starts one with config overrides; every server is stopped
at the end of its test. Generation defaults are tiny (64×64, 2 steps) so unspecified requests are fast.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

TINY_DEFAULTS = {"default_width": 64, "default_height": 64, "default_num_inference_steps": 2}
#: A job that holds the worker far longer than any test needs (16 images × 200 steps at 256², minutes
#: on a fast CPU); tests cancel it, which takes effect after the current step.
BLOCKER = {"kind": "generate", "model": "tiny-z-image", "prompt": "blocker", "width": 256, "height": 256,
           "steps": 200, "count": 16}  # fmt: skip


@dataclass
class LiveServer:
    url: str
    app: Any
    server: Any
    thread: threading.Thread

    @property
    def services(self):
        return self.app.state.services

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 60), **kwargs)

    def stop(self) -> None:
        # force_exit: don't wait for idle keep-alive connections; the lifespan shutdown still runs.
        self.server.should_exit = self.server.force_exit = True
        self.thread.join(60)


def bound_socket() -> socket.socket:
    """A listening socket on a free loopback port, handed to uvicorn (no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def start_server(app: Any) -> LiveServer:
    import uvicorn

    sock = bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", app, server, thread)


@pytest.fixture
def make_settings(config_file: Path) -> Callable[..., Any]:
    def make(**sections: dict[str, Any]):
        from imagestudio.config import load_settings

        overrides = {"generation": dict(TINY_DEFAULTS), **sections}
        return load_settings(config_file, overrides=overrides)

    return make


@pytest.fixture
def serve(make_settings) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def start(
        services_factory: Callable[[Any], Any] | None = None,
        clock: Callable[[], float] = time.time,
        **sections: dict[str, Any],
    ) -> LiveServer:
        from imagestudio.server import build_app

        settings = make_settings(**sections)
        services = services_factory(settings) if services_factory else None
        if services is not None:
            services.start()
        live = start_server(build_app(settings, services=services, pages=False, clock=clock))
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()
        if live.services.queue.worker_alive:
            live.services.close()
        live.services.studio.manager.unload()


@pytest.fixture
def live(serve) -> LiveServer:
    return serve()


def png_bytes(width: int = 32, height: int = 32, color: str = "red", mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def open_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def upscaled_image(client: httpx.Client, job_id: str, query: str, size: tuple[int, int]) -> dict[str, Any]:
    """The one picture of the upscale job ``job_id``, checked: the job reported its steps to the last one
    and ended done with one PNG of ``size``, which History finds by ``query``."""
    events = sse_events(client, f"/api/jobs/{job_id}/events")
    assert events[-1][0] == "done", events[-1]
    steps = [data for kind, data in events if kind == "step"]
    # A job that ended before the stream opened is told by its end alone; its status keeps its last step.
    last = steps[-1] if steps else client.get(f"/api/jobs/{job_id}").json()["progress"]
    assert last is not None and last["step"] == last["steps"]
    [image] = events[-1][1]["images"]
    assert open_png(client.get(image["url"]).content).size == size
    found = client.get("/api/history", params={"q": query}).json()
    assert [item["id"] for item in found["items"]] == [image["id"]]
    return image


def assert_error_shape(response: httpx.Response, status: int, *, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped error with the given status, a one-line message and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "\n" not in error["message"]
    assert "Traceback" not in response.text
    assert isinstance(error["type"], str) and error["type"]
    if param is not None:
        assert error["param"] == param, error
    return error


def sse_events(client: httpx.Client, path: str, *, until: Callable[[str, dict], bool] | None = None):
    """Read a Server-Sent Events stream into [(event, data)], until it ends or ``until`` says stop."""
    import json

    events: list[tuple[str, dict]] = []
    with client.stream("GET", path, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        kind, data = None, None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
            elif line == "" and kind is not None:
                events.append((kind, data))
                if until is not None and until(kind, data):
                    break
                kind, data = None, None
    return events
