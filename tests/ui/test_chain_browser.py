"""Chained work, the queue and History in a real browser (issue: chained edits, real queue, History).

One server for the module (``imagestudio serve`` with the tiny models); each test opens its own
browser context, so each has its own queue panel, and uses its own prompts in the shared history.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers import write_picture
from tests.ui.conftest import screenshot
from tests.ui.widgets import (
    add_edit_pictures,
    custom_size,
    fill_text,
    gallery_images,
    open_tab,
    run_and_wait,
    set_number,
    wait_no_pending,
)

pytestmark = pytest.mark.browser
#: Upper bound for waits on the server (History's details, a job): generous, for a busy machine.
SLOW_MS = 120_000


def generate(page, prompt: str, steps: int = 2) -> None:
    fill_text(page, "gen-prompt", prompt)
    custom_size(page, 64, 64, "Custom size")
    set_number(page, "gen-steps", steps)
    assert run_and_wait(page, "gen") == "done"
    gallery_images(page, "gen-gallery").first.wait_for()


def test_a_result_goes_to_edit_and_is_edited_again_in_two_clicks(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="en-US")
    generate(page, "a lighthouse to edit")
    # Results open in the lightbox too.
    gallery_images(page, "gen-gallery").first.dblclick()
    expect(page.locator("#is-lightbox")).to_be_visible()
    expect(page.locator("#is-lightbox img")).to_have_attribute("src", re.compile(r"lighthouse"))
    page.keyboard.press("Escape")
    expect(page.locator("#is-lightbox")).to_be_hidden()

    page.locator("#gen-edit-this").click()  # click 1: the result becomes Picture 1, Edit opens
    expect(page.get_by_role("tab", name="Edit")).to_have_attribute("aria-selected", "true")
    page.locator("#edit-image-1 img").wait_for()
    fill_text(page, "edit-instruction", "paint the lighthouse red")
    set_number(page, "edit-steps", 2)
    assert run_and_wait(page, "edit") == "done"  # click 2: Edit
    gallery_images(page, "edit-gallery").first.wait_for()
    # Before and after, side by side on one slider.
    expect(page.locator("#edit-compare")).to_be_visible()
    expect(page.locator("#edit-compare img")).to_have_count(2)
    first_result = gallery_images(page, "edit-gallery").first.get_attribute("src")

    # The edit's own result goes back into Picture 1 for the next edit.
    page.locator("#edit-edit-this").click()
    expect(page.locator("#edit-image-1 img")).to_be_visible()
    assert run_and_wait(page, "edit") == "done"
    expect(gallery_images(page, "edit-gallery").first).not_to_have_attribute("src", first_result)
    screenshot(page, "edit-en-chained")

    # Vary this: the result becomes the Generate page's start picture.
    page.locator("#edit-vary-this").click()
    expect(page.get_by_role("tab", name="Generate")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#gen-size input")).to_have_value("As the starting picture")
    # The start picture is in the editor: its empty-state prompt is gone (History's Vary this runs it).
    expect(page.locator("#gen-source")).to_be_visible()
    expect(page.locator("#gen-source")).not_to_contain_text("Upload")


def test_a_result_is_dragged_into_a_picture_slot(studio_server, open_page, tmp_path: Path) -> None:
    page = open_page(studio_server.url, locale="en-US")
    open_tab(page, "Edit")
    picture = write_picture(tmp_path / "a.png", 5, (64, 48))
    add_edit_pictures(page, picture)
    fill_text(page, "edit-instruction", "make it dusk")
    set_number(page, "edit-steps", 2)
    assert run_and_wait(page, "edit") == "done"
    result = gallery_images(page, "edit-gallery").first
    result.wait_for()
    expect(page.locator("#edit-image-2 img")).to_have_count(0)
    result.drag_to(page.locator("#edit-image-2"))
    expect(page.locator("#edit-image-2 img")).to_be_visible()
    # A filled slot takes a dropped picture too (it replaces the one there).
    before = page.locator("#edit-image-1 img").get_attribute("src")
    result.drag_to(page.locator("#edit-image-1"))
    expect(page.locator("#edit-image-1 img")).not_to_have_attribute("src", before)


def test_history_shows_an_edits_inputs_and_use_restores_them(
    studio_server, open_page, tmp_path: Path
) -> None:
    page = open_page(studio_server.url, locale="ru-RU")
    open_tab(page, "Редактирование")
    first = write_picture(tmp_path / "sofa.png", 7, (64, 64))
    second = write_picture(tmp_path / "cat.png", 8, (48, 64))
    add_edit_pictures(page, first, second)
    fill_text(page, "edit-instruction", "кот с картинки 2 на диване")
    fill_text(page, "edit-negative", "размыто")
    set_number(page, "edit-steps", 2)
    assert run_and_wait(page, "edit", timeout_ms=SLOW_MS) == "done"

    open_tab(page, "История")
    fill_text(page, "hist-search", "диван")  # the word in another form
    page.locator("#hist-find").click()
    images = gallery_images(page, "hist-gallery")
    expect(images).to_have_count(1, timeout=SLOW_MS)
    images.first.click()
    details = page.locator("#hist-details")
    expect(details).to_contain_text("размыто", timeout=SLOW_MS)
    expect(details).to_contain_text("True CFG", timeout=SLOW_MS)
    expect(details).to_contain_text("Картинка 1, Картинка 2", timeout=SLOW_MS)
    expect(gallery_images(page, "hist-inputs")).to_have_count(2, timeout=SLOW_MS)
    screenshot(page, "history-ru-edit-inputs")

    # Clear the slots, then "use these settings" brings the pictures back.
    for n in (1, 2):
        open_tab(page, "Редактирование")
        page.locator(f"#edit-image-{n} button[aria-label='Remove Image']").first.click()
        expect(page.locator(f"#edit-image-{n} img")).to_have_count(0, timeout=SLOW_MS)
    open_tab(page, "История")  # opening the page lists it afresh: choose the picture again
    fill_text(page, "hist-search", "диван")
    page.locator("#hist-find").click()
    images.first.click()
    expect(page.locator("#hist-use")).to_be_enabled(timeout=SLOW_MS)
    page.locator("#hist-use").click()
    expect(page.get_by_role("tab", name="Редактирование")).to_have_attribute(
        "aria-selected", "true", timeout=SLOW_MS
    )
    expect(page.locator("#edit-image-1 img")).to_be_visible(timeout=SLOW_MS)
    expect(page.locator("#edit-image-2 img")).to_be_visible(timeout=SLOW_MS)
    assert page.locator("#edit-negative input, #edit-negative textarea").first.input_value() == "размыто"

    # A History picture dragged over the Edit tab (which opens) into Picture 3.
    open_tab(page, "История")
    expect(page.locator("#edit-image-3 img")).to_have_count(0, timeout=SLOW_MS)
    images.first.hover()
    page.mouse.down()
    # A few small moves first: the browser starts a drag only once the pointer has moved.
    start = images.first.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2 + 10, start["y"] + start["height"] / 2 + 10, steps=3)
    tab = page.get_by_role("tab", name="Редактирование").bounding_box()
    page.mouse.move(tab["x"] + tab["width"] / 2, tab["y"] + tab["height"] / 2, steps=10)
    page.mouse.move(tab["x"] + tab["width"] / 2 + 3, tab["y"] + tab["height"] / 2, steps=2)
    expect(page.get_by_role("tab", name="Редактирование")).to_have_attribute(
        "aria-selected", "true", timeout=SLOW_MS
    )
    slot = page.locator("#edit-image-3").bounding_box()
    page.mouse.move(slot["x"] + slot["width"] / 2, slot["y"] + slot["height"] / 2, steps=5)
    page.mouse.up()
    expect(page.locator("#edit-image-3 img")).to_be_visible(timeout=SLOW_MS)

    # Edit this from History.
    open_tab(page, "История")
    images.first.click()
    page.locator("#hist-edit-this").click()
    expect(page.get_by_role("tab", name="Редактирование")).to_have_attribute(
        "aria-selected", "true", timeout=SLOW_MS
    )

    # Vary this from History: the picture becomes the start picture on Generate.
    open_tab(page, "История")
    images.first.click()
    page.locator("#hist-vary-this").click()
    expect(page.get_by_role("tab", name="Создание")).to_have_attribute(
        "aria-selected", "true", timeout=SLOW_MS
    )
    # It runs as img2img from that picture: History shows the strength and the start picture.
    fill_text(page, "gen-prompt", "вариация дивана")
    set_number(page, "gen-steps", 2)
    assert run_and_wait(page, "gen", timeout_ms=SLOW_MS) == "done"
    screenshot(page, "generate-ru-vary-from-history")
    open_tab(page, "История")
    # Opening the tab lists the last search afresh: that answer first, so it cannot land after the next.
    wait_no_pending(page, "hist-gallery", timeout_ms=SLOW_MS)
    fill_text(page, "hist-search", "вариация")
    page.locator("#hist-find").click()
    # This search's own listing (the one before it held the edit, also one picture): the new caption.
    expect(page.locator("#hist-gallery")).to_contain_text("вариация дивана", timeout=SLOW_MS)
    expect(images).to_have_count(1, timeout=SLOW_MS)
    images.first.click()
    expect(page.locator("#hist-details")).to_contain_text("Сила изменения", timeout=SLOW_MS)
    expect(gallery_images(page, "hist-inputs")).to_have_count(1, timeout=SLOW_MS)


def test_three_jobs_queue_behind_a_running_one_and_each_can_be_cancelled(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="en-US")
    fill_text(page, "gen-prompt", "a long running fjord")
    custom_size(page, 512, 512, "Custom size")
    set_number(page, "gen-steps", 100)
    page.locator("#gen-run").click()
    queue = page.locator("#is-queue li")
    expect(page.locator("#is-queue li[data-state=running]")).to_have_count(1, timeout=60_000)

    # Generate stays enabled; three more prompts, one per line, queue behind it.
    expect(page.locator("#gen-run")).to_be_enabled()
    page.locator("#gen-per-line label").click()
    fill_text(page, "gen-prompt", "first waiting moose\nsecond waiting moose\nthird waiting moose")
    set_number(page, "gen-steps", 2)
    page.locator("#gen-run").click()
    expect(queue).to_have_count(4)
    waiting = page.locator("#is-queue li[data-state=queued]")
    expect(waiting).to_have_count(3)
    expect(page.locator("#is-queue")).to_contain_text("second waiting moose")
    expect(page.locator("#is-queue")).to_contain_text("tiny-z-image")
    expect(page.locator("#is-queue")).to_contain_text(re.compile(r"#3 in line"))
    screenshot(page, "generate-en-queue")

    page.locator("#is-queue li", has_text="second waiting moose").locator("button").click()
    expect(queue).to_have_count(3)
    expect(page.locator("#is-queue")).not_to_contain_text("second waiting moose")
    expect(page.locator("#is-queue")).to_contain_text("third waiting moose")

    # Cancel stops everything this page queued; the panel empties.
    page.locator("#gen-cancel").click()
    expect(queue).to_have_count(0, timeout=60_000)


def test_history_word_search_thumbnails_lightbox_and_confirmed_multi_delete(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="ru-RU")
    fill_text(page, "gen-prompt", "кот в шляпе\nпёс в шляпе\nшляпа на вешалке")
    page.locator("#gen-per-line label").click()
    custom_size(page, 64, 64, "Свой размер")
    set_number(page, "gen-steps", 2)
    assert run_and_wait(page, "gen") == "done"
    expect(gallery_images(page, "gen-gallery")).to_have_count(3, timeout=60_000)

    open_tab(page, "История")
    fill_text(page, "hist-search", "шляпа")
    page.locator("#hist-find").click()
    images = gallery_images(page, "hist-gallery")
    expect(images).to_have_count(3)  # "шляпа" finds "в шляпе" too

    # One hit is one small thumbnail, not the whole gallery.
    fill_text(page, "hist-search", "вешалка")
    page.locator("#hist-find").click()
    expect(images).to_have_count(1)
    box = images.first.bounding_box()
    assert box["width"] <= 160 and box["height"] <= 160, box

    # The lightbox: double click, arrows, Esc.
    fill_text(page, "hist-search", "шляпа")
    page.locator("#hist-find").click()
    expect(images).to_have_count(3)
    images.first.dblclick()
    lightbox = page.locator("#is-lightbox")
    expect(lightbox).to_be_visible()
    expect(lightbox).to_have_attribute("data-index", "0")
    page.keyboard.press("ArrowRight")
    expect(lightbox).to_have_attribute("data-index", "1")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(lightbox).to_have_attribute("data-index", "2")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()

    # Select several, asked before deleting; "Keep" deletes nothing.
    page.locator("#hist-multi label").click()
    images.nth(0).click()
    images.nth(2).click()
    expect(page.locator("#hist-marked")).to_contain_text("Отмечено: 2.")
    page.locator("#hist-delete").click()
    expect(page.locator("#hist-confirm")).to_contain_text("Удалить картинки: 2?")
    page.locator("#hist-confirm-no").click()
    expect(page.locator("#hist-confirm")).to_be_hidden()
    expect(images).to_have_count(3)
    page.locator("#hist-delete").click()
    page.locator("#hist-confirm-yes").click()
    expect(page.locator("#hist-status")).to_contain_text("Удалено: 2.")
    expect(images).to_have_count(1)


def test_edit_this_and_vary_this_wait_for_a_result(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="en-US")
    buttons = ["#gen-edit-this", "#gen-vary-this", "#edit-edit-this", "#edit-vary-this"]
    for button in buttons[:2]:
        expect(page.locator(button)).to_be_disabled()
    open_tab(page, "Edit")
    for button in buttons[2:]:
        expect(page.locator(button)).to_be_disabled()
    open_tab(page, "History")
    for button in ("#hist-edit-this", "#hist-vary-this"):
        expect(page.locator(button)).to_be_disabled()

    open_tab(page, "Generate")
    generate(page, "a windmill waiting for its result")
    expect(page.locator("#gen-edit-this")).to_be_enabled()
    expect(page.locator("#gen-vary-this")).to_be_enabled()
    # The Edit page has no result yet: its buttons still wait.
    expect(page.locator("#edit-edit-this")).to_be_disabled()

    # Results cleared (a request refused before it ran takes the last pictures off): disabled again.
    fill_text(page, "gen-prompt", "")
    page.locator("#gen-run").click()
    expect(page.locator("#gen-prompt-error")).to_contain_text("prompt")
    expect(gallery_images(page, "gen-gallery")).to_have_count(0)
    expect(page.locator("#gen-edit-this")).to_be_disabled()
    expect(page.locator("#gen-vary-this")).to_be_disabled()

    # A new result, and the enabled button does its job: the picture lands in Picture 1.
    generate(page, "a windmill to edit")
    result = gallery_images(page, "gen-gallery").first.get_attribute("src")
    assert result and "windmill" in result
    page.locator("#gen-edit-this").click()
    expect(page.get_by_role("tab", name="Edit")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#edit-image-1 img")).to_be_visible()


def focus_by_tab(page, selector: str, presses: int = 40) -> None:
    """Press Tab until the focused element is inside ``selector`` (only the keyboard moves the focus)."""
    for _ in range(presses):
        if page.evaluate("(s) => !!document.activeElement.closest(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_history_lightbox_opens_from_the_keyboard_and_gives_the_focus_back(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="en-US")
    fill_text(page, "gen-prompt", "keyboard heron\nkeyboard crane")
    page.locator("#gen-per-line label").click()
    custom_size(page, 64, 64, "Custom size")
    set_number(page, "gen-steps", 2)
    assert run_and_wait(page, "gen") == "done"
    expect(gallery_images(page, "gen-gallery")).to_have_count(2, timeout=60_000)

    open_tab(page, "History")
    fill_text(page, "hist-search", "keyboard")
    page.keyboard.press("Enter")  # the search box's submit
    images = gallery_images(page, "hist-gallery")
    expect(images).to_have_count(2)
    lightbox = page.locator("#is-lightbox")

    # Tab to the first picture, Enter opens it; the arrows go through the gallery.
    focus_by_tab(page, "#hist-gallery .thumbnail-item")
    first = page.evaluate("() => document.activeElement.querySelector('img').src")
    page.keyboard.press("Enter")
    expect(lightbox).to_be_visible()
    expect(lightbox).to_have_attribute("data-index", "0")
    expect(page.locator("#is-lightbox img")).to_have_attribute("src", first)
    page.keyboard.press("ArrowRight")
    expect(lightbox).to_have_attribute("data-index", "1")
    # Tab stays in the open picture (nothing behind it is reached).
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "is-lightbox"
    # Esc closes it and the focus is back on the picture it was opened from.
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    assert page.evaluate("() => document.activeElement.querySelector('img')?.src") == first
    # Enter chose the picture as a click does: the buttons that act on it are usable.
    expect(page.locator("#hist-edit-this")).to_be_enabled()

    # The next picture, with Space this time.
    page.keyboard.press("Tab")
    second = page.evaluate("() => document.activeElement.querySelector('img')?.src")
    assert second and second != first
    page.keyboard.press(" ")
    expect(lightbox).to_be_visible()
    expect(lightbox).to_have_attribute("data-index", "1")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    assert page.evaluate("() => document.activeElement.querySelector('img')?.src") == second
