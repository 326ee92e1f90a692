"""What a hostile web page (or a careless client) can do to the studio: the server with its pages
mounted, exactly as ``imagestudio serve`` builds it, on a loopback port.

A page on any site can send simple requests to ``http://127.0.0.1:PORT`` and, through DNS rebinding,
read answers; the studio's own Gradio routes take file paths from the client. Each test here failed
before its defence existed (see docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.api.conftest import (
    TINY_DEFAULTS,
    LiveServer,
    assert_error_shape,
    png_bytes,
    start_server,
)
from tests.helpers import wait_until

KEY = "studio-secret-key-for-tests"
EVIL = "http://evil.example"
FILE_META = {"_type": "gradio.FileData"}


def start_studio(home: Path, models_dir: Path, **server: Any) -> LiveServer:
    """``build_app``, as ``imagestudio serve`` does, with its own home."""
    from imagestudio.config import load_settings
    from imagestudio.server import build_app

    config = home / "config.yaml"
    config.write_text(
        f"storage:\n  models_dir: {models_dir}\n  outputs_dir: {home / 'outputs'}\n"
        f"  history_db: {home / 'history.sqlite3'}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, overrides={"generation": dict(TINY_DEFAULTS), "server": server})
    return start_server(build_app(settings))


def stop_studio(live: LiveServer) -> None:
    live.stop()
    if live.services.queue.worker_alive:
        live.services.close()
    live.services.studio.manager.unload()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path) -> Iterator[LiveServer]:
    """The studio without a key (the default on 127.0.0.1)."""
    live = start_studio(tmp_path_factory.mktemp("open-studio"), shared_models_dir)
    yield live
    stop_studio(live)


@pytest.fixture(scope="module")
def locked_studio(tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path) -> Iterator[LiveServer]:
    live = start_studio(tmp_path_factory.mktemp("locked-studio"), shared_models_dir, api_key=KEY)
    yield live
    stop_studio(live)


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files outside every folder the studio may read: a real picture and a text file."""
    folder = tmp_path_factory.mktemp("not-the-studios")
    (folder / "secret.png").write_bytes(png_bytes(48, 48, "green"))
    (folder / "secret.txt").write_text("root:x:0:0\n", encoding="utf-8")
    return folder


def port_of(live: LiveServer) -> int:
    return int(urlsplit(live.url).port or 0)


def gradio_call(http: httpx.Client, api_name: str, data: list[Any]) -> list[tuple[str, Any]]:
    """One call through Gradio's HTTP API: (event, data) pairs until it completes or fails."""
    started = http.post(f"/gradio_api/call/{api_name}", json={"data": data})
    assert started.status_code == 200, started.text
    event_id = started.json()["event_id"]
    events: list[tuple[str, Any]] = []
    with http.stream("GET", f"/gradio_api/call/{api_name}/{event_id}", timeout=120) as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind is not None:
                events.append((kind, json.loads(line.removeprefix("data: "))))
                if kind in ("complete", "error"):
                    break
    return events


def page_call(http: httpx.Client, api_name: str, values: dict[str, Any]) -> list[Any]:
    """The data a page sends for its event ``api_name``: every input's own default from the page's
    ``/config``, with ``values`` (by ``elem_id``) put in. Read from the running page, so a control
    added to a form cannot silently turn a call into a wrong-length one that fails for another reason."""
    config = http.get("/config").json()
    components = {component["id"]: component.get("props", {}) for component in config["components"]}
    (event,) = [dependency for dependency in config["dependencies"] if dependency.get("api_name") == api_name]
    names = [components[input_id].get("elem_id") for input_id in event["inputs"]]
    unknown = set(values) - set(names)
    assert not unknown, f"{api_name} has no input {sorted(unknown)}; it has {names}"
    return [
        values[name] if name in values else components[input_id].get("value")
        for name, input_id in zip(names, event["inputs"], strict=True)
    ]


def edit_call(http: httpx.Client, image: Any) -> list[Any]:
    """The Edit page's run of "make it blue" on ``image``, two steps of the tiny model."""
    return page_call(
        http,
        "edit",
        {
            "edit-image-1": image,
            "edit-instruction": "make it blue",
            "edit-negative": "",
            "edit-steps": 2,
            "edit-model": "tiny-qwen-image-edit",
            "edit-lang": "en",
        },
    )


def generate_call(http: httpx.Client, start_image: Any) -> list[Any]:
    """The Generate page's run of "a cat" at 64x64, two steps, with ``start_image`` as the image
    editor's value."""
    return page_call(
        http,
        "generate",
        {
            "gen-prompt": "a cat",
            "gen-model": "tiny-z-image",
            "gen-width": 64,
            "gen-height": 64,
            "gen-steps": 2,
            "gen-source": start_image,
            "gen-source-bad": "",
            "gen-lang": "en",
        },
    )


def improve_call(http: httpx.Client) -> list[Any]:
    """The Generate page's Improve prompt on "a cat"."""
    return page_call(http, "improve", {"gen-prompt": "a cat", "gen-model": "tiny-z-image", "gen-lang": "en"})


def file_urls(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        url = value.get("url")
        if isinstance(url, str) and "/gradio_api/file=" in url:
            found.append(url)
        for item in value.values():
            found.extend(file_urls(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(file_urls(item))
    return found


def job_count(http: httpx.Client) -> int:
    return len(http.get("/api/jobs").json()["jobs"])


def upload_folder_files() -> set[Path]:
    from gradio.utils import get_upload_folder

    root = Path(get_upload_folder())
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


# --- DNS rebinding: the Host header ----------------------------------------------------------------


def test_a_foreign_host_name_is_refused_everywhere(studio: LiveServer) -> None:
    port = port_of(studio)
    with studio.client() as http:
        jobs_before = job_count(http)
        for method, path, body in [
            ("GET", "/api/history", None),
            ("POST", "/api/jobs", {"kind": "generate", "model": "tiny-z-image", "prompt": "x"}),
            ("GET", "/", None),
            ("GET", "/config", None),
            ("GET", "/gradio_api/info", None),
            ("GET", "/v1/models", None),
        ]:
            answer = http.request(method, path, json=body, headers={"Host": f"evil.example:{port}"})
            error = assert_error_shape(answer, 400)
            assert error["code"] == "host_not_allowed" and "server.allowed_hosts" in error["message"], path
        assert job_count(http) == jobs_before  # nothing was queued
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST", "127.0.0.1"):
            assert http.get("/api/history", headers={"Host": host}).status_code == 200, host
        # A foreign name that merely starts or ends like a local one is still foreign.
        for host in ("localhost.evil.example", "127.0.0.1.evil.example", "evil.example:7860@127.0.0.1"):
            assert http.get("/api/history", headers={"Host": host}).status_code == 400, host


def test_allowed_hosts_adds_names_and_star_allows_any(serve) -> None:
    named = serve(server={"allowed_hosts": ["studio.lan"]})
    with named.client() as http:
        assert http.get("/api/history", headers={"Host": "Studio.LAN:7860"}).status_code == 200
        assert http.get("/api/history", headers={"Host": "other.lan"}).status_code == 400
    anything = serve(server={"allowed_hosts": ["*"]})
    with anything.client() as http:
        assert http.get("/api/history", headers={"Host": "other.lan"}).status_code == 200


# --- Other sites' pages: Origin, Referer and content types ----------------------------------------


def test_other_sites_cannot_start_jobs_upload_or_delete(studio: LiveServer) -> None:
    own = studio.url
    with studio.client() as http:
        jobs_before = job_count(http)
        files = {"image": ("in.png", png_bytes(), "image/png")}
        form = {"prompt": "swap", "model": "tiny-qwen-image-edit", "steps": "2"}
        for headers in (
            {"Origin": EVIL},
            {"Origin": "null"},  # sandboxed frames and file:// pages
            {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
            {"Origin": f"http://localhost:{port_of(studio) + 1}"},  # another local app
            {"Referer": f"{EVIL}/page.html"},  # no Origin: the Referer decides
        ):
            answer = http.post("/api/jobs/edits", data=form, files=files, headers=headers)
            assert assert_error_shape(answer, 403)["code"] == "foreign_origin", headers
            upload = http.post("/gradio_api/upload", files={"files": ("a.png", png_bytes())}, headers=headers)
            assert upload.status_code == 403, headers
            join = http.post("/gradio_api/queue/join", json={"data": [], "fn_index": 0}, headers=headers)
            assert join.status_code == 403, headers
            assert http.delete("/api/images/whatever", headers=headers).status_code == 403
            assert http.post("/api/models/tiny-z-image/download", headers=headers).status_code == 403
        assert job_count(http) == jobs_before

        # The studio's own pages (same origin) and programs (no Origin) keep working; a page of ours
        # with a no-referrer policy sends "Origin: null", and the browser says it is same-origin.
        ours = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
        assert assert_error_shape(http.delete("/api/images/whatever", headers=ours), 404)
        upload = http.post(
            "/gradio_api/upload", files={"files": ("a.png", png_bytes())}, headers={"Origin": own}
        )
        assert upload.status_code == 200, upload.text
        same_site = http.post("/api/jobs/edits", data=form, files=files, headers={"Origin": own})
        assert same_site.status_code == 202, same_site.text
        program = http.post("/api/jobs/edits", data=form, files=files)
        assert program.status_code == 202, program.text
        for job in (same_site.json(), program.json()):
            wait_until(lambda job=job: http.get(f"/api/jobs/{job['id']}").json()["state"] == "done")


def add_echo_socket(live: LiveServer, opened: list[str | None]) -> str:
    """A WebSocket route on the live app (the studio has none today: this stands for any that Gradio or
    a later route brings) that records each handshake it accepts and echoes one message; its ws:// URL."""
    from starlette.websockets import WebSocket

    async def echo(websocket: WebSocket) -> None:
        opened.append(websocket.headers.get("origin"))
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    # Starlette's plain route: the endpoint gets the socket itself (no FastAPI parameter resolution).
    live.app.router.add_websocket_route("/ws-echo", echo)
    return live.url.replace("http://", "ws://", 1) + "/ws-echo"


def websocket_status(url: str, *, origin: str | None = None, host: str | None = None, **headers: str) -> int:
    """Open a real WebSocket to ``url`` (over a connection to the server, whatever name ``host`` gives
    the Host header): 101 once it echoed a message, else the HTTP status that refused the handshake."""
    import socket

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    target = url if host is None else parts._replace(netloc=host).geturl()
    try:
        with connect(
            target, sock=sock, origin=origin, additional_headers=headers, proxy=None, open_timeout=30
        ) as websocket:
            websocket.send("ping")
            assert websocket.recv(timeout=30) == "ping"
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code
    finally:
        sock.close()


def test_websocket_handshakes_from_other_sites_and_names_are_refused(serve) -> None:
    """A page can open a WebSocket to any address (no CORS applies to one): handshakes whose Origin is
    another site, or whose Host is a rebinding name, never reach a WebSocket route; without the key, a
    locked server refuses them too."""
    live = serve()
    opened: list[str | None] = []
    url = add_echo_socket(live, opened)
    port = port_of(live)
    own = f"http://127.0.0.1:{port}"
    for refused in (
        {"origin": EVIL},
        {"origin": "null"},  # sandboxed frames and file:// pages
        {"origin": f"http://localhost:{port + 1}"},  # another local app
        {"origin": EVIL, "host": f"127.0.0.1:{port}"},
        {"host": f"evil.example:{port}"},  # DNS rebinding: the page's own name, no Origin needed
        {"origin": f"http://evil.example:{port}", "host": f"evil.example:{port}"},
    ):
        assert websocket_status(url, **refused) == 403, refused
    assert opened == []  # the route never saw them
    # The server's own pages and programs (no Origin) still connect.
    assert websocket_status(url, origin=own) == 101
    assert websocket_status(url, origin=f"http://localhost:{port}", host=f"localhost:{port}") == 101
    assert websocket_status(url) == 101
    assert opened == [own, f"http://localhost:{port}", None]

    locked = serve(server={"api_key": KEY})
    locked_opened: list[str | None] = []
    locked_url = add_echo_socket(locked, locked_opened)
    assert websocket_status(locked_url) == 403
    assert websocket_status(locked_url, Authorization="Bearer wrong-key") == 403
    assert locked_opened == []
    assert websocket_status(locked_url, Authorization=f"Bearer {KEY}") == 101


def test_form_and_text_posts_cannot_reach_json_routes(studio: LiveServer) -> None:
    job = json.dumps({"kind": "generate", "model": "tiny-z-image", "prompt": "x"})
    with studio.client() as http:
        jobs_before = job_count(http)
        for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
            for path in ("/api/jobs", "/v1/images/generations", "/api/models/tiny-z-image/download"):
                answer = http.post(path, content=job, headers={"Content-Type": content_type})
                assert assert_error_shape(answer, 415)["code"] == "unsupported_media_type", (
                    path,
                    content_type,
                )
        # The form routes read form fields, but a urlencoded body holds no image: refused all the same.
        fields = "prompt=x&model=tiny-qwen-image-edit"
        for path in ("/api/jobs/edits", "/v1/images/edits"):
            text = http.post(path, content=fields, headers={"Content-Type": "text/plain"})
            assert assert_error_shape(text, 415)["code"] == "unsupported_media_type", path
            urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
            form = http.post(path, content=fields, headers=urlencoded)
            assert_error_shape(form, 400, param="image")
        assert job_count(http) == jobs_before


def test_gradio_cors_allows_no_other_local_origin(studio: LiveServer, locked_studio: LiveServer) -> None:
    other = "http://localhost:9999"
    for live, headers in ((studio, {}), (locked_studio, {"Authorization": f"Bearer {KEY}"})):
        with live.client() as http:
            config = http.get("/config", headers={**headers, "Origin": other})
            assert config.status_code == 200
            assert "access-control-allow-origin" not in config.headers
            assert config.headers.get("access-control-allow-credentials") != "true"
            preflight = http.options(
                "/gradio_api/queue/join",
                headers={"Origin": other, "Access-Control-Request-Method": "POST"},
            )
            assert "access-control-allow-origin" not in preflight.headers
            assert preflight.headers.get("access-control-allow-credentials") != "true"


# --- Files: what the Gradio routes read and serve ----------------------------------------------------


def test_gradio_routes_read_no_file_outside_the_uploads(studio: LiveServer, secrets_dir: Path) -> None:
    from gradio.utils import get_upload_folder

    secret = secrets_dir / "secret.png"
    before = upload_folder_files()
    attempts = [
        {"path": str(secret), "meta": FILE_META},
        {"path": str(secret)},  # no meta: Gradio's own file handling does not even see it
        {"path": str(secrets_dir / "missing.png"), "meta": FILE_META},
        {"path": str(secrets_dir / "secret.txt"), "meta": FILE_META},
        {"path": f"{get_upload_folder()}/../{secret.relative_to('/')}", "meta": FILE_META},
        {"path": os.path.relpath(secret), "meta": FILE_META},
    ]
    with studio.client() as http:
        images_before = http.get("/api/history").json()["total"]
        jobs_before = job_count(http)
        answers = []
        for attempt in attempts:
            events = gradio_call(http, "edit", edit_call(http, attempt))
            assert events[-1][0] == "error", (attempt, events)
            answers.append(events[-1])
        # One answer for every path: nothing tells which files exist or what they hold.
        assert all(answer == answers[0] for answer in answers), answers
        assert "secret" not in json.dumps(answers)

        start = {"background": {"path": str(secret), "meta": FILE_META}, "layers": [], "composite": None}
        events = gradio_call(http, "generate", generate_call(http, start))
        assert events[-1][0] == "error" and events[-1] == answers[0], events
        start_no_meta = {"background": {"path": str(secret)}, "layers": [], "composite": None}
        assert gradio_call(http, "generate", generate_call(http, start_no_meta))[-1] == answers[0]

        assert http.get("/api/history").json()["total"] == images_before
        assert job_count(http) == jobs_before
    digest = hashlib.sha256(secret.read_bytes()).digest()
    copied = [path for path in upload_folder_files() - before if path.read_bytes() == secret.read_bytes()]
    assert not copied, f"the secret was copied into Gradio's cache: {copied} ({digest.hex()[:8]})"


def test_a_file_uploaded_through_the_page_is_edited(studio: LiveServer) -> None:
    with studio.client() as http:
        uploaded = http.post(
            "/gradio_api/upload", files={"files": ("in.png", png_bytes(40, 40, "blue"), "image/png")}
        )
        assert uploaded.status_code == 200, uploaded.text
        (path,) = uploaded.json()
        events = gradio_call(
            http, "edit", edit_call(http, {"path": path, "meta": FILE_META, "orig_name": "in.png"})
        )
        assert events[-1][0] == "complete", events
        assert file_urls(events[-1][1]), events[-1]


def test_a_deleted_image_is_no_longer_served_by_the_pages(studio: LiveServer) -> None:
    with studio.client() as http:
        made = http.post("/v1/images/generations", json={"model": "tiny-z-image", "prompt": "a deleted cat"})
        assert made.status_code == 200, made.text
        listing = http.get("/api/history", params={"q": "a deleted cat"}).json()
        (image,) = listing["items"]
        events = gradio_call(http, "load", ["a deleted cat", "en"])
        assert events[-1][0] == "complete", events
        (url,) = set(file_urls(events[-1][1]))
        assert http.get(url).status_code == 200
        assert http.delete(f"/api/images/{image['id']}").status_code == 200
        gone = http.get(url)
        assert gone.status_code in (403, 404), (url, gone.status_code)


def test_gradio_file_route_serves_nothing_outside_outputs_and_uploads(
    studio: LiveServer, secrets_dir: Path
) -> None:
    outputs = studio.services.settings.outputs_dir
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "mine.png").write_bytes(png_bytes())
    link = outputs / "link-to-secret.txt"
    if not link.is_symlink():
        link.symlink_to(secrets_dir / "secret.txt")
    secret = str(secrets_dir / "secret.txt")
    with studio.client() as http:
        assert http.get(f"/gradio_api/file={outputs / 'mine.png'}").status_code == 200
        for path in [
            "/etc/passwd",
            quote("/etc/passwd", safe=""),
            secret,
            f"{outputs}/{os.path.relpath(secret, outputs)}",
            f"{outputs}/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            f"{outputs}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            str(link),
            str(studio.services.settings.history_db),
        ]:
            answer = http.get(f"/gradio_api/file={path}")
            assert answer.status_code in (403, 404), (path, answer.status_code)
            assert b"root:x" not in answer.content


def test_with_a_key_every_gradio_route_needs_it(locked_studio: LiveServer) -> None:
    outputs = locked_studio.services.settings.outputs_dir
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "mine.png").write_bytes(png_bytes())
    with locked_studio.client() as http:
        for method, path in [
            ("GET", "/"),
            ("GET", "/config"),
            ("GET", "/gradio_api/info"),
            ("GET", "/gradio_api/queue/data?session_hash=abc"),
            ("GET", f"/gradio_api/file={outputs / 'mine.png'}"),
            ("GET", "/theme.css"),
            ("POST", "/gradio_api/upload"),
            ("POST", "/gradio_api/queue/join"),
            ("POST", "/gradio_api/call/edit"),
        ]:
            answer = http.request(method, path)
            assert answer.status_code == 401, (method, path, answer.status_code)
        bearer = {"Authorization": f"Bearer {KEY}"}
        assert http.get("/config", headers=bearer).status_code == 200
        assert http.get(f"/gradio_api/file={outputs / 'mine.png'}", headers=bearer).status_code == 200


# --- Unmatched API paths and HEAD --------------------------------------------------------------------


def test_unmatched_api_paths_answer_in_openais_shape(studio: LiveServer) -> None:
    with studio.client() as http:
        for path in ("/v1/nope", "/api/nope", "/v1/images/generations/extra", "/api"):
            error = assert_error_shape(http.get(path), 404)
            assert error["code"] == "not_found" and path in error["message"], path
        wrong = http.get("/v1/images/generations")
        assert assert_error_shape(wrong, 405)["code"] == "method_not_allowed"
        assert wrong.headers["allow"] == "POST"
        assert assert_error_shape(http.delete("/api/history"), 405)["code"] == "method_not_allowed"
        # The pages themselves are still Gradio's.
        assert http.get("/", headers={"Accept": "text/html"}).status_code == 200

        made = http.post("/v1/images/generations", json={"model": "tiny-z-image", "prompt": "head"})
        assert made.status_code == 200, made.text
        image_id = http.get("/api/history", params={"q": "head"}).json()["items"][0]["id"]
        got = http.get(f"/api/images/{image_id}")
        head = http.head(f"/api/images/{image_id}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"] == "image/png"
        assert head.headers["content-length"] == got.headers["content-length"]
        assert http.head("/api/history").status_code == 200
        assert http.head("/api/images/no-such-image").status_code == 404


def test_head_works_without_the_pages_too(serve) -> None:
    live = serve()
    with live.client() as http:
        assert http.head("/api/history").status_code == 200
        assert http.head("/v1/models").status_code == 200
        assert assert_error_shape(http.get("/v1/images/generations"), 405)["code"] == "method_not_allowed"


# --- The checks' parsing, case by case ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:7860", ("127.0.0.1", 7860)),
        ("LocalHost", ("localhost", None)),
        ("[::1]:7860", ("::1", 7860)),
        ("[::1]", ("::1", None)),
        ("studio.lan.:80", ("studio.lan", 80)),
        ("evil.example:x", ("\0", None)),
        ("[::1]junk", ("\0", None)),
    ],
)
def test_split_host(value: str, expected: tuple[str, int | None]) -> None:
    from imagestudio.api.browser_guard import split_host

    assert split_host(value) == expected


@pytest.mark.parametrize(
    ("origin", "host", "own"),
    [
        ("http://127.0.0.1:7860", "127.0.0.1:7860", True),
        ("http://127.0.0.1:7861", "127.0.0.1:7860", False),
        ("http://localhost:7860", "127.0.0.1:7860", False),  # another origin, even if the same machine
        ("https://studio.example", "studio.example", True),  # behind a TLS proxy
        ("http://studio.example", "studio.example:80", True),
        ("http://ui.example", "127.0.0.1:7860", True),  # listed in cors_origins
        ("null", "127.0.0.1:7860", False),
        ("file://", "127.0.0.1:7860", False),
        ("http://127.0.0.1:7860.evil.example", "127.0.0.1:7860", False),
        ("http://[::1", "127.0.0.1:7860", False),
    ],
)
def test_origin_matching(origin: str, host: str, own: bool) -> None:
    from imagestudio.api.browser_guard import OriginGuard

    guard = OriginGuard(app=None, cors_origins=["http://ui.example/"])  # type: ignore[arg-type]
    scope = {"type": "http", "headers": [(b"host", host.encode())]}
    assert guard.is_own(origin, scope) is own
