"""The first screen explains itself, checked in headless Chromium at a laptop's 1440×900.

The run button stands by the prompt, in the window, with its keyboard shortcut written out; result
areas read as results (not as upload boxes, and no Tab stop); the queue panel appearing moves nothing;
the language on screen is marked among the language links.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import screenshot
from tests.ui.widgets import choose, fill_text, open_tab, set_number, wait_progress_state, watch_progress

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1440, 900


@pytest.fixture
def laptop_page(studio_server, browser) -> Iterator[object]:
    contexts = []

    def open_(locale: str = "en-US") -> object:
        context = browser.new_context(locale=locale, viewport={"width": WIDTH, "height": HEIGHT})
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(studio_server.url + "/")
        page.locator("#gen-run").wait_for(state="visible", timeout=120_000)
        return page

    yield open_
    for context in contexts:
        context.close()


def test_the_run_button_stands_by_the_prompt_above_the_fold_with_its_shortcut(laptop_page) -> None:
    page = laptop_page()
    prompt = page.locator("#gen-prompt textarea").bounding_box()
    run = page.locator("#gen-run").bounding_box()
    assert run["y"] + run["height"] <= HEIGHT, f"Generate is below the fold: {run}"
    # Next to the prompt: right under it (the first-run banner above may take room, never what is between).
    assert 0 <= run["y"] - (prompt["y"] + prompt["height"]) < 90, (prompt, run)
    hint = page.locator("#gen-run-hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("Ctrl+Enter")
    box = hint.bounding_box()
    assert box["y"] + box["height"] <= HEIGHT, f"the shortcut hint is below the fold: {box}"
    screenshot(page, "first-screen-en-desktop")

    open_tab(page, "Edit")
    instruction = page.locator("#edit-instruction textarea").bounding_box()
    edit = page.locator("#edit-run").bounding_box()
    assert 0 <= edit["y"] - (instruction["y"] + instruction["height"]) < 90, (instruction, edit)
    assert edit["y"] + edit["height"] <= HEIGHT, f"Edit is below the fold: {edit}"
    expect(page.locator("#edit-run-hint")).to_contain_text("Ctrl+Enter")
    screenshot(page, "first-screen-en-desktop-edit")


@pytest.mark.parametrize("tab", ["Generate", "Edit"])
def test_result_areas_read_as_results_and_are_no_upload_tab_stop(laptop_page, tab: str) -> None:
    page = laptop_page()
    open_tab(page, tab)
    gallery = page.locator("#gen-gallery" if tab == "Generate" else "#edit-gallery")
    expect(gallery).to_be_visible()
    words = gallery.inner_text()
    for upload_words in ("Drop", "Upload", "Click"):
        assert upload_words not in words, f"the result area reads as an upload box: {words!r}"
    expect(gallery.locator("input[type=file]")).to_have_count(0)
    # Nothing in the empty result area takes the keyboard's focus.
    focusable = gallery.evaluate(
        """(root) => [...root.querySelectorAll('button, input, [tabindex]')]
             .filter((el) => el.offsetParent !== null && el.tabIndex >= 0 && !el.disabled)
             .map((el) => el.outerHTML.slice(0, 100))"""
    )
    assert not focusable, f"the empty result area is a Tab stop: {focusable}"


def page_top(page, selector: str) -> float:
    """Where ``selector`` starts on the page (not in the window: a click may scroll)."""
    return page.locator(selector).evaluate("(el) => el.getBoundingClientRect().top + window.scrollY")


def test_the_queue_panel_appearing_moves_nothing_on_the_page(laptop_page) -> None:
    page = laptop_page()
    fill_text(page, "gen-prompt", "a long job, to see the queue panel")
    choose(page, "gen-size", "Custom size")
    set_number(page, "gen-width", 1024)
    set_number(page, "gen-height", 1024)
    set_number(page, "gen-steps", 100)
    marks = ("#tab-generate", "#gen-prompt", "#gen-run", "#gen-result-col")
    before = {mark: page_top(page, mark) for mark in marks}
    watch_progress(page, "gen")
    page.locator("#gen-run").click()
    panel = page.locator("#is-queue li[data-job]")
    panel.first.wait_for(timeout=90_000)
    after = {mark: page_top(page, mark) for mark in marks}
    screenshot(page, "first-screen-en-queue-panel")
    page.locator("#gen-cancel").click()
    assert wait_progress_state(page, "gen", ("done", "failed", "cancelled"), timeout_ms=90_000) == "cancelled"
    moved = {mark: after[mark] - before[mark] for mark in marks if abs(after[mark] - before[mark]) > 1}
    assert not moved, f"the queue panel pushed the page down: {moved}"


@pytest.mark.parametrize("locale,current,other", [("en-US", "en", "ru"), ("ru-RU", "ru", "en")])
def test_the_current_language_link_is_marked(laptop_page, locale: str, current: str, other: str) -> None:
    page = laptop_page(locale)
    marked = page.locator(f"#is-lang a[data-lang={current}]")
    expect(marked).to_have_attribute("aria-current", "true")
    expect(page.locator(f"#is-lang a[data-lang={other}]")).not_to_have_attribute("aria-current", "true")
    style = "(el) => { const s = getComputedStyle(el); return [s.fontWeight, s.textDecorationLine]; }"
    assert marked.evaluate(style) != page.locator(f"#is-lang a[data-lang={other}]").evaluate(style), (
        "the current language looks like the other one"
    )
