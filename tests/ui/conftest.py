"""Fixtures for driving the studio in a real browser: a server process and headless Chromium.

The server is ``imagestudio serve`` itself, started in a subprocess on a free loopback port with the
tiny models, exactly as a user starts it. Chromium is Debian's (``apt-get install chromium``):
Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import PYTHON, REPO_ROOT, cli_env

CHROMIUM = Path(os.environ.get("IMAGESTUDIO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
#: The slowest thing here is the server's first start (importing torch, diffusers and gradio).
START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StudioServer:
    """``imagestudio serve`` in a subprocess; :meth:`restart` keeps its home (history, outputs).

    ``api_key``: the key the config sets (server.api_key), which the readiness probe then sends.
    """

    def __init__(self, home: Path, config: Path, api_key: str | None = None) -> None:
        self.home = home
        self.config = config
        self.api_key = api_key
        self.port = free_port()
        self.log = home / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self._process is None, "already running"
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "imagestudio",
                    "serve",
                    "--port",
                    str(self.port),
                    "--config",
                    str(self.config),
                ],
                env=cli_env(IMAGESTUDIO_HOME=str(self.home)),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
            )
        probe_headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/", headers=probe_headers, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the server did not answer within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def write_config(home: Path, models_dir: Path) -> Path:
    config = home / "config.yaml"
    config.write_text(
        f"storage:\n  models_dir: {models_dir}\n  outputs_dir: {home / 'outputs'}\n", encoding="utf-8"
    )
    return config


@contextmanager
def studio_running(
    home: Path, models_dir: Path, extra_config: str = "", api_key: str | None = None
) -> Iterator[StudioServer]:
    """``imagestudio serve`` for ``home`` with the models of ``models_dir`` and ``extra_config`` (YAML
    added to the config), answering until the block is left."""
    config = write_config(home, models_dir)
    if extra_config:
        config.write_text(config.read_text(encoding="utf-8") + extra_config, encoding="utf-8")
    server = StudioServer(home, config, api_key=api_key)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def studio_server(
    tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path
) -> Iterator[StudioServer]:
    """One running studio per test module (the start costs seconds; the pages are independent)."""
    with studio_running(tmp_path_factory.mktemp("studio-home"), shared_models_dir) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


PageOpener = Callable[..., object]


@pytest.fixture
def open_page(browser) -> Iterator[PageOpener]:
    """``open_page(url, locale="en-US", fake_clock=False)``: a fresh browser context (own cookies, own
    language) on the studio, returned once the Generate page is interactive."""
    contexts = []

    def open_(url: str, locale: str = "en-US", path: str = "/", fake_clock: bool = False) -> object:
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        if fake_clock:
            # Playwright's clock, before the page makes its timers: it runs at real speed until a test
            # moves it on (page.clock.run_for fires every timer due in that span at once).
            page.clock.install()
        page.goto(url + path)
        # An upper bound: on a machine busy with other test runs the first load was seen to take > 60 s.
        page.locator("#gen-run").wait_for(state="visible", timeout=120_000)
        return page

    yield open_
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    """Save the whole page as test-artifacts/<name>.png (kept for people to look at)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
