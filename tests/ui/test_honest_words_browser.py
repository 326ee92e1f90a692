"""Honest words, checked in headless Chromium against ``imagestudio serve`` with the tiny models only.

Download asks before fetching tens of GB (size, room, whether this machine can run it); an offline
model's "improved" prompt is said to be random; models not on this machine are marked in the lists;
"Reuse last seed" with nothing to reuse says so; a size with both sides wrong names both.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import screenshot
from tests.ui.test_enhance_browser import improve_and_wait
from tests.ui.widgets import choose, fill_text, open_tab, set_number

pytestmark = pytest.mark.browser

GB = re.compile(r"\d+(\.\d+)? GB")


def downloads_started(server_url: str, model_id: str) -> bool:
    """Whether this server has started a download of ``model_id`` (its download route answers 404 until)."""
    return httpx.get(f"{server_url}/api/models/{model_id}/download", timeout=30).status_code != 404


def test_download_asks_first_with_size_room_and_whether_this_machine_runs_it(
    studio_server, open_page
) -> None:
    page = open_page(studio_server.url)
    page.locator("#gen-first-run-download").click()
    question = page.locator("#gen-first-run-ask-text .is-question")
    expect(question).to_contain_text("Download Z-Image-Turbo", timeout=60_000)
    expect(question).to_contain_text(GB)
    expect(question.locator("[data-room]")).to_contain_text("free")
    runs = question.locator(".is-verdict")
    expect(runs).to_have_count(1)
    yes = page.locator("#gen-first-run-ask-yes")
    expect(yes).to_contain_text(GB)
    # The button says "anyway" exactly when the plan says this machine cannot run it.
    if runs.get_attribute("data-runs") == "no":
        expect(runs).to_contain_text("cannot run it")
        expect(yes).to_contain_text("anyway")
    else:
        expect(runs).to_contain_text("On this machine:")
        expect(yes).not_to_contain_text("anyway")
    screenshot(page, "honest-en-download-question")
    assert not downloads_started(studio_server.url, "z-image-turbo"), "the button downloaded without asking"
    page.locator("#gen-first-run-ask-no").click()
    expect(page.locator("#gen-first-run-ask-yes")).to_be_hidden()
    assert not downloads_started(studio_server.url, "z-image-turbo")

    # The System page asks about the chosen download, then its own button downloads (and fails here:
    # no network), the error next to it.
    open_tab(page, "System")
    row = "#sys-models tr[data-variant-of=qwen-image-edit-2511][data-variant=gguf-q4_k_m]"
    page.locator(f"{row} .is-row-download").click()
    question = page.locator("#sys-ask-text .is-question")
    expect(question).to_contain_text("Qwen-Image-Edit-2511 (gguf-q4_k_m weights)", timeout=60_000)
    expect(question.locator(".is-verdict")).to_have_count(1)
    assert not downloads_started(studio_server.url, "qwen-image-edit-2511")
    screenshot(page, "honest-en-system-download-question")
    page.locator("#sys-ask-yes").click()
    expect(page.locator("#sys-ask-yes")).to_be_hidden()
    expect(page.locator("#sys-download-status .is-error")).to_contain_text("Download failed", timeout=60_000)
    assert downloads_started(studio_server.url, "qwen-image-edit-2511")


def test_improve_prompt_with_the_offline_model_says_the_text_is_random(studio_server, open_page) -> None:
    page = open_page(studio_server.url)
    expect(page.locator("#gen-model input")).to_have_value(re.compile("Tiny Z-Image"))
    fill_text(page, "gen-prompt", "a lighthouse at dusk")
    improve_and_wait(page, "gen", "gen-prompt", "a lighthouse at dusk", studio_server.url)
    status = page.locator("#gen-improve-status")
    expect(status).to_contain_text("random text")
    expect(status).not_to_contain_text("Prompt improved")
    screenshot(page, "honest-en-random-rewrite")


def test_reuse_last_seed_with_nothing_to_reuse_says_so(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="ru-RU")
    page.locator("#gen-reuse-seed").click()
    expect(page.locator("#gen-seed-note")).to_contain_text("Повторять пока нечего")
    expect(page.locator("#gen-seed")).to_be_hidden()
    open_tab(page, "Редактирование")
    page.locator("#edit-reuse-seed").click()
    expect(page.locator("#edit-seed-note")).to_contain_text("Повторять пока нечего")


def test_a_size_with_both_sides_wrong_names_both(studio_server, open_page) -> None:
    page = open_page(studio_server.url)
    fill_text(page, "gen-prompt", "two wrong sides")
    choose(page, "gen-size", "Custom size")
    set_number(page, "gen-width", 40)
    set_number(page, "gen-height", 30)
    page.locator("#gen-run").click()
    error = page.locator("#gen-size-error .is-error")
    expect(error).to_contain_text("Width 40")
    expect(error).to_contain_text("Height 30")
    assert page.locator("#gen-progress .is-progress").count() == 0, "a job started"


@pytest.mark.parametrize("locale,missing", [("en-US", "not downloaded"), ("ru-RU", "не скачана")])
def test_models_not_on_this_machine_are_marked_in_the_lists(
    studio_server, open_page, locale: str, missing: str
) -> None:
    page = open_page(studio_server.url, locale=locale)
    options = page.locator("ul[role=listbox] li[role=option]")
    for elem_id, real, tiny in (
        ("gen-model", "Z-Image-Turbo", "Z-Image ("),
        ("edit-model", "Qwen-Image-Edit-2511", "Qwen edit ("),
    ):
        if elem_id == "edit-model":
            open_tab(page, "Edit" if locale == "en-US" else "Редактирование")
        page.locator(f"#{elem_id} input[role=combobox]").click()
        expect(options.filter(has_text=real)).to_contain_text(f"{real} ({missing})")
        expect(options.filter(has_text=tiny)).not_to_contain_text(missing)
        page.keyboard.press("Escape")
