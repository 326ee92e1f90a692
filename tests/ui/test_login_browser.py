"""A studio guarded by an API key, in a real browser: the login page, then the studio itself.

The server is ``imagestudio serve`` with ``server.api_key`` in its config; the browser has only the
login form to get in, and everything the studio loads afterwards (Gradio's XHR, event stream and
image files) must pass on the session cookie alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import StudioServer, screenshot, studio_running
from tests.ui.widgets import choose, fill_text, gallery_images, run_and_wait, set_number

pytestmark = pytest.mark.browser

KEY = "studio-key-7Qx2"
SLOW_MS = 120_000


@pytest.fixture(scope="module")
def locked_server(
    tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path
) -> Iterator[StudioServer]:
    """``imagestudio serve`` with ``server.api_key`` in its config."""
    home = tmp_path_factory.mktemp("locked-home")
    with studio_running(home, shared_models_dir, f"server:\n  api_key: {KEY}\n", api_key=KEY) as server:
        yield server


def test_a_russian_browser_logs_in_and_generates(locked_server: StudioServer, browser) -> None:
    context = browser.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    # Upper bounds only: on a machine busy with other work the studio's first load and first job take
    # far longer than usual (30 s was seen to run out on the way to a field).
    context.set_default_timeout(SLOW_MS)
    try:
        page = context.new_page()
        page.goto(locked_server.url + "/")

        # Not the studio: the Russian login page, which remembers where the browser was going.
        expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
        expect(page.locator("html")).to_have_attribute("lang", "ru")
        expect(page.locator("label[for=login-key]")).to_have_text("Ключ API")
        expect(page.locator("#login-submit")).to_have_text("Войти")
        assert page.locator("#gen-run").count() == 0
        screenshot(page, "login-ru")

        page.locator("#login-key").fill("not-the-key")
        page.locator("#login-submit").click()
        wrong = "Неверный ключ. Проверьте его и попробуйте ещё раз."
        expect(page.locator("#login-error")).to_have_text(wrong, timeout=SLOW_MS)
        expect(page.locator("#login-key")).to_have_attribute("aria-invalid", "true")
        assert not [c for c in context.cookies() if c["name"].startswith("imagestudio-session")]
        screenshot(page, "login-ru-wrong-key")

        page.locator("#login-key").fill(KEY)
        page.locator("#login-submit").click()
        page.locator("#gen-run").wait_for(state="visible", timeout=SLOW_MS)
        assert page.url == locked_server.url + "/"
        (session,) = [c for c in context.cookies() if c["name"].startswith("imagestudio-session")]
        assert session["httpOnly"] and session["sameSite"] == "Strict" and not session["secure"]
        assert session["value"] != KEY

        # The studio in Russian, working through the cookie alone.
        expect(page.get_by_role("tab", name="Создание")).to_be_visible(timeout=SLOW_MS)
        expect(page.locator("#gen-run")).to_have_text("Создать", timeout=SLOW_MS)
        fill_text(page, "gen-prompt", "сторож у ворот, гравюра")
        choose(page, "gen-size", "Свой размер")
        set_number(page, "gen-width", 64)
        set_number(page, "gen-height", 64)
        set_number(page, "gen-steps", 2)
        assert run_and_wait(page, "gen", timeout_ms=SLOW_MS) == "done"
        image = gallery_images(page, "gen-gallery").first
        image.wait_for()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())

        logout = page.locator("#is-logout")
        expect(logout).to_have_text("Выйти", use_inner_text=True, timeout=SLOW_MS)
        screenshot(page, "generate-ru-signed-in")
        logout.click()
        expect(page).to_have_url(re.compile(r"/login$"), timeout=SLOW_MS)
        assert not [c for c in context.cookies() if c["name"].startswith("imagestudio-session")]
        page.goto(locked_server.url + "/")
        expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    finally:
        context.close()


def test_the_language_links_on_the_login_page_switch_and_are_remembered(
    locked_server: StudioServer, browser
) -> None:
    context = browser.new_context(locale="ru-RU")
    try:
        page = context.new_page()
        page.goto(locked_server.url + "/?tab=1")
        expect(page.locator("#login-submit")).to_have_text("Войти")
        page.locator("#login-lang a[data-lang=en]").click()
        expect(page.locator("#login-submit")).to_have_text("Sign in")
        expect(page.locator("label[for=login-key]")).to_have_text("API key")
        # The studio's language setting now says English, so the plain page follows it too.
        page.goto(locked_server.url + "/login")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.locator("#login-key").fill(KEY)
        page.locator("#login-submit").click()
        page.locator("#gen-run").wait_for(state="visible", timeout=60_000)
        expect(page.locator("#gen-run")).to_have_text("Generate")
        expect(page.locator("#is-logout")).to_have_text("Log out", use_inner_text=True)
    finally:
        context.close()
