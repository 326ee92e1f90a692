"""Improve prompt and seed variety in a real browser, against ``imagestudio serve`` with the tiny models.

The tiny text encoders write random words (and the page says so): what is checked is that the button
rewrites the prompt box, Undo brings the user's words back, and a job run with the rewrite records
both prompts (and variety).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.helpers import wait_until
from tests.ui.conftest import screenshot
from tests.ui.widgets import add_edit_pictures, custom_size, fill_text, open_tab, run_and_wait, set_number

pytestmark = pytest.mark.browser

#: The rewrite is a job on the shared queue: model load + a short generation on a busy CPU.
REWRITE_TIMEOUT_MS = 120_000


#: The offline models write random words with a fresh seed each time: a rewrite can be judged unusable
#: (the prompt is kept and the page says so), so a test that needs a rewrite asks again a few times.
REWRITE_TRIES = 4


def improve_and_wait(page, prefix: str, box: str, original: str, server_url: str) -> str:
    textarea = page.locator(f"#{box} textarea")
    status = page.locator(f"#{prefix}-improve-status")
    for _ in range(REWRITE_TRIES):
        before = finished_rewrites(server_url)
        page.locator(f"#{prefix}-improve").click()

        # The queue says when this rewrite has ended; the page's answer follows it.
        def ended(before: int = before) -> bool:
            return finished_rewrites(server_url) != before

        wait_until(ended, REWRITE_TIMEOUT_MS / 1000, "the rewrite to finish")
        # The answer comes with its status note; the box says which: rewritten, or kept (unusable).
        note = status.locator(".is-note[data-kind=ok], .is-note[data-kind=warn]")
        expect(note).to_have_count(1)
        if textarea.input_value() != original:
            expect(page.locator(f"#{prefix}-undo")).to_be_visible()
            return textarea.input_value()
    pytest.fail(f"{REWRITE_TRIES} rewrites in a row were unusable")


def finished_rewrites(server_url: str) -> int:
    """How many prompt rewrites this server has finished (done or failed) so far."""
    with httpx.Client(timeout=30) as http:
        jobs = http.get(f"{server_url}/api/jobs").json()["jobs"]
    return sum(1 for job in jobs if job["kind"] == "enhance" and job["state"] in ("done", "failed"))


def test_improve_prompt_on_generate_then_run_with_variety(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="en-US")
    original = "a red fox in the snow"
    fill_text(page, "gen-prompt", original)
    rewritten = improve_and_wait(page, "gen", "gen-prompt", original, studio_server.url)
    assert rewritten.strip() and "\n" not in rewritten
    # The offline model's text encoder has random weights: the page does not call its text an improvement.
    expect(page.locator("#gen-improve-status")).to_contain_text("random text")
    screenshot(page, "generate-en-improved")

    # Undo brings back the words typed; improving again offers a (new) rewrite to edit.
    page.locator("#gen-undo").click()
    expect(page.locator("#gen-prompt textarea")).to_have_value(original)
    expect(page.locator("#gen-undo")).to_be_hidden()
    rewritten = improve_and_wait(page, "gen", "gen-prompt", original, studio_server.url)

    set_number(page, "gen-steps", 2)
    set_number(page, "gen-variety", 0.35)
    assert run_and_wait(page, "gen") == "done"
    with httpx.Client(timeout=30) as http:
        [item] = http.get(f"{studio_server.url}/api/history", params={"limit": 1}).json()["items"]
    assert item["prompt"] == rewritten
    assert item["parameters"]["original_prompt"] == original
    assert item["parameters"]["variety"] == 0.35


def test_improve_an_edit_instruction_in_russian(studio_server, open_page, tmp_path: Path) -> None:
    page = open_page(studio_server.url, locale="ru-RU")
    open_tab(page, "Редактирование")
    picture = tmp_path / "кот.png"
    Image.fromarray(np.full((64, 96, 3), 180, dtype=np.uint8)).save(picture)
    add_edit_pictures(page, picture)
    original = "Сделай кота с Картинки 1 рыжим"
    fill_text(page, "edit-instruction", original)
    improve_and_wait(page, "edit", "edit-instruction", original, studio_server.url)
    expect(page.locator("#edit-improve-status")).to_contain_text("случайный текст")
    screenshot(page, "edit-ru-improved")
    page.locator("#edit-undo").click()
    expect(page.locator("#edit-instruction textarea")).to_have_value(original)


def test_improve_with_an_empty_prompt_is_explained_in_place(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="en-US")
    page.locator("#gen-improve").click()
    expect(page.locator("#gen-improve-status .is-error")).to_contain_text("Write a prompt first")


def test_an_improvement_waiting_in_the_queue_is_cancelled_from_the_page(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="ru-RU")
    # A long generation holds the queue, so the improvement waits behind it until it is cancelled.
    fill_text(page, "gen-prompt", "долгий фьорд")
    custom_size(page, 512, 512, "Свой размер")
    set_number(page, "gen-steps", 100)
    page.locator("#gen-run").click()
    expect(page.locator("#is-queue li[data-state=running]")).to_have_count(1, timeout=60_000)

    original = "маяк в тумане"
    fill_text(page, "gen-prompt", original)
    expect(page.locator("#gen-improve-cancel")).to_be_hidden()
    page.locator("#gen-improve").click()
    cancel = page.locator("#gen-improve-cancel")
    expect(cancel).to_be_visible()
    expect(page.locator("#gen-improve")).to_be_hidden()
    expect(page.locator("#gen-improve-status")).to_contain_text("Улучшаю запрос")
    screenshot(page, "generate-ru-improving")
    cancel.click()
    expect(page.locator("#gen-improve-status")).to_contain_text("Улучшение отменено")
    expect(page.locator("#gen-improve")).to_be_visible()
    expect(cancel).to_be_hidden()
    assert page.locator("#gen-prompt textarea").input_value() == original
    # Only the improvement was cancelled: the generation still runs (and is stopped here).
    expect(page.locator("#is-queue li[data-state=running]")).to_have_count(1)
    page.locator("#gen-cancel").click()
    expect(page.locator("#is-queue li")).to_have_count(0, timeout=60_000)
