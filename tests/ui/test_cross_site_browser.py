"""Another web site, open in the same Chromium, attacks the studio on 127.0.0.1 (no key).

The attacking page is served from a second local port (another origin, as any web site is); it
submits a ``text/plain`` form that smuggles a job's JSON, posts a multipart edit with ``fetch`` in
``no-cors`` mode (no preflight) and tries to read the history. The browser itself adds the ``Origin``
header, so this is the real request shape, not one a test made up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.ui.conftest import StudioServer

pytestmark = pytest.mark.browser

ATTACK_PAGE = """<!doctype html><html><body>
<form id="job" method="POST" action="{studio}/api/jobs" enctype="text/plain" target="sink">
<input name='{{"kind": "generate", "model": "tiny-z-image", "prompt": "pwned", "x": "' value='"}}'>
</form>
<iframe name="sink"></iframe>
<script>
async function attack() {{
  const results = {{}};
  document.getElementById("job").submit();
  // A 1x1 PNG, as a multipart edit: a "simple" request, no preflight.
  const png = Uint8Array.from(atob(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
  ), c => c.charCodeAt(0));
  const form = new FormData();
  form.append("prompt", "pwned");
  form.append("model", "tiny-qwen-image-edit");
  form.append("image", new Blob([png], {{type: "image/png"}}), "a.png");
  await fetch("{studio}/api/jobs/edits", {{method: "POST", mode: "no-cors", body: form}});
  await fetch("{studio}/gradio_api/upload", {{method: "POST", mode: "no-cors", body: form}});
  try {{
    const history = await fetch("{studio}/api/history");
    results.read = await history.text();
  }} catch (error) {{
    results.read = "blocked";
  }}
  try {{
    const config = await fetch("{studio}/config", {{credentials: "include"}});
    results.config = await config.text();
  }} catch (error) {{
    results.config = "blocked";
  }}
  window.attackResults = results;
}}
attack();
</script></body></html>"""


@pytest.fixture
def attacker_site(studio_server: StudioServer) -> Iterator[str]:
    page = ATTACK_PAGE.format(studio=studio_server.url).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_another_site_can_neither_run_jobs_nor_read_the_studio(
    studio_server: StudioServer, attacker_site: str, browser
) -> None:
    with httpx.Client(base_url=studio_server.url, timeout=30) as http:
        jobs_before = http.get("/api/jobs").json()["jobs"]
        context = browser.new_context()
        try:
            page = context.new_page()
            # The studio's answer to the form (loaded into the page's iframe): once it has come, the
            # request has been decided, so a job it had made would already be listed below.
            with page.expect_response(
                lambda answer: (
                    answer.request.method == "POST" and answer.url == f"{studio_server.url}/api/jobs"
                ),
                timeout=30_000,
            ) as form_answer:
                page.goto(attacker_site)
            page.wait_for_function("window.attackResults !== undefined", timeout=30_000)
            results = page.evaluate("window.attackResults")
        finally:
            context.close()
        assert form_answer.value.status in (403, 415), form_answer.value.status
        assert results["read"] == "blocked" and results["config"] == "blocked", results
        assert http.get("/api/jobs").json()["jobs"] == jobs_before
        assert not [item for item in http.get("/api/history").json()["items"] if item["prompt"] == "pwned"]
