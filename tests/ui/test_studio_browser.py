"""The studio in a real browser: headless Chromium against ``imagestudio serve`` with the tiny models.

One server serves the whole module (it shares one history, so tests use distinct prompts); each test
opens its own browser context. Screenshots of every page go to test-artifacts/ for people to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.helpers import wait_until, write_picture
from tests.ui.conftest import screenshot
from tests.ui.widgets import (
    add_edit_pictures,
    check_radio,
    custom_size,
    fill_text,
    gallery_images,
    open_tab,
    progress_seen,
    run_and_wait,
    set_number,
    wait_progress_state,
    wait_tab_drawn,
    watch_progress,
)

SLOW_MS = 120_000

pytestmark = pytest.mark.browser


def test_generate_from_a_russian_prompt_shows_progress_then_the_image(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="ru-RU")
    fill_text(page, "gen-prompt", "рыжий кот в шляпе, акварель")
    # Big and long enough (for the tiny model) that the bar is seen between steps.
    custom_size(page, 512, 512, "Свой размер")
    set_number(page, "gen-steps", 30)
    assert run_and_wait(page, "gen") == "done"
    images = gallery_images(page, "gen-gallery")
    images.first.wait_for()
    assert images.count() == 1

    seen = progress_seen(page, "gen")
    running = [entry for entry in seen if entry["state"] == "running" and 0 < entry["step"] < entry["steps"]]
    assert running, f"no intermediate progress was ever shown: {seen}"
    assert running[-1]["steps"] == 30
    assert re.search(r"Шаг \d+ из 30 · прошло", running[-1]["text"])
    info = page.locator("#gen-info").inner_text()
    assert "Готово за" in info and "зерно" in info
    expect(page.locator("#gen-gallery")).to_contain_text(re.compile(r"зерно \d+"))  # the image's caption
    screenshot(page, "generate-ru-done")

    # A random seed has no number to show until it is reused: then it is the one the job used.
    expect(page.locator("#gen-seed")).to_be_hidden()
    used = re.search(r"зерно (\d+)", info).group(1)
    page.locator("#gen-reuse-seed").click()
    expect(page.locator("#gen-seed input")).to_have_value(used)
    assert page.locator("#gen-seed-mode input[value=fixed]").is_checked()


def test_russian_and_english_labels_follow_the_browser(studio_server, open_page) -> None:
    ru = open_page(studio_server.url, locale="ru-RU")
    assert ru.get_by_role("tab", name="Создание").is_visible()
    # The offline models say what they are in the reader's language (their pictures are noise).
    expect(ru.locator("#gen-model input")).to_have_value("Мини-Z-Image (офлайн, шум)")
    assert ru.locator("#gen-run").inner_text().strip() == "Создать"
    assert ru.locator("#gen-prompt").get_by_text("Запрос").is_visible()
    for tab, name in (("Редактирование", "edit"), ("История", "history")):
        open_tab(ru, tab)
        wait_tab_drawn(ru, name)
        screenshot(ru, f"{name}-ru")
    open_tab(ru, "Система")
    # The configuration check is filled in after the tab opens; its lines read in Russian too.
    checks = ru.locator("#sys-checks tr[data-code='ram.size']")
    # Sizing the real models on the meta device takes a few seconds the first time.
    expect(checks).to_contain_text("оперативная память", timeout=60_000)
    expect(ru.locator("#sys-checks tr[data-code='device.cpu']")).to_contain_text("видеокарты нет")
    expect(ru.locator("#sys-checks tr[data-code^='plan.']").first).to_contain_text("ГБ")
    screenshot(ru, "system-ru")
    expect(ru.locator("footer")).to_contain_text("Настройки")
    expect(ru.locator("footer")).not_to_contain_text("Runs")

    en = open_page(studio_server.url, locale="en-US")
    assert en.locator("#gen-run").inner_text().strip() == "Generate"
    assert en.get_by_role("tab", name="History").is_visible()
    screenshot(en, "generate-en")

    # Gradio's own settings panel switches the language of the running page…
    en.locator("footer").get_by_text("Settings").click()
    en.locator("input[aria-label=Language]").click()
    en.locator("ul[role=listbox] li[role=option]", has_text="Русский").first.click()
    en.keyboard.press("Escape")
    expect(en.locator("#gen-run")).to_have_text("Создать")
    # … and so do the header's links, which the browser also remembers.
    en.goto(studio_server.url + "/")
    expect(en.locator("#gen-run")).to_have_text("Generate")
    en.locator("#is-lang a[data-lang=ru]").click()
    expect(en.locator("#gen-run")).to_have_text("Создать")
    en.goto(studio_server.url + "/")
    expect(en.locator("#gen-run")).to_have_text("Создать")


def test_bad_size_is_explained_next_to_the_control_and_the_page_stays_usable(
    studio_server, open_page
) -> None:
    page = open_page(studio_server.url, locale="ru-RU")
    fill_text(page, "gen-prompt", "маяк на скале")
    custom_size(page, 40, 64, "Свой размер")
    page.locator("#gen-run").click()

    error = page.locator("#gen-size-error .is-error")
    error.wait_for()
    assert "Ширина 40 не кратна 16" in error.inner_text()
    assert page.locator("#gen-prompt-error .is-error").count() == 0
    assert gallery_images(page, "gen-gallery").count() == 0
    screenshot(page, "generate-ru-bad-size")

    set_number(page, "gen-width", 64)
    set_number(page, "gen-steps", 2)
    assert run_and_wait(page, "gen") == "done"
    assert page.locator("#gen-size-error .is-error").count() == 0
    gallery_images(page, "gen-gallery").first.wait_for()


def test_an_empty_prompt_is_refused_under_the_prompt(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="en-US")
    page.locator("#gen-run").click()
    error = page.locator("#gen-prompt-error .is-error")
    error.wait_for()
    assert "Write a prompt first" in error.inner_text()


def test_cancel_a_running_job(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="en-US")
    fill_text(page, "gen-prompt", "a slow picture to cancel")
    custom_size(page, 1024, 1024, "Custom size")
    set_number(page, "gen-steps", 100)
    watch_progress(page, "gen")
    page.locator("#gen-run").click()
    page.locator("#gen-progress .is-progress[data-state=running]:not([data-step='0'])").wait_for(
        timeout=90_000
    )
    # While it runs, the live preview (latents projected to RGB) shows up beside the bar.
    page.locator("#gen-preview img").wait_for(timeout=30_000)
    screenshot(page, "generate-en-running")
    page.locator("#gen-cancel").click()

    assert wait_progress_state(page, "gen", ("done", "failed", "cancelled")) == "cancelled"
    assert "Cancelled" in page.locator("#gen-progress").inner_text()
    assert gallery_images(page, "gen-gallery").count() == 0
    last_step = max(entry["step"] for entry in progress_seen(page, "gen"))
    assert last_step < 100
    screenshot(page, "generate-en-cancelled")

    # The worker survived: the next job runs.
    custom_size(page, 64, 64, "Custom size")
    set_number(page, "gen-steps", 2)
    assert run_and_wait(page, "gen") == "done"


def test_edit_with_two_pictures(studio_server, open_page, tmp_path: Path) -> None:
    page = open_page(studio_server.url, locale="ru-RU")
    open_tab(page, "Редактирование")
    first = write_picture(tmp_path / "кот.png", 1, (96, 64))
    second = write_picture(tmp_path / "шляпа.png", 2, (64, 64))
    add_edit_pictures(page, first, second)
    fill_text(page, "edit-instruction", "Кот с Картинки 1 в шляпе с Картинки 2")
    set_number(page, "edit-steps", 2)
    assert run_and_wait(page, "edit") == "done"
    gallery_images(page, "edit-gallery").first.wait_for()
    screenshot(page, "edit-ru-done")


def test_an_unreadable_picture_is_explained_under_the_pictures(studio_server, open_page, tmp_path) -> None:
    page = open_page(studio_server.url, locale="en-US")
    open_tab(page, "Edit")
    fake = tmp_path / "not-a-picture.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    page.locator("#edit-image-1 input[type=file]").set_input_files(str(fake))
    # Checked on upload, before anyone presses Edit.
    error = page.locator("#edit-images-error .is-error")
    error.wait_for()
    assert "Picture 1" in error.inner_text()
    screenshot(page, "edit-en-bad-picture")


def test_history_survives_a_restart_and_fills_the_form(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="ru-RU")
    fill_text(page, "gen-prompt", "Заснеженный Байкал на рассвете")
    custom_size(page, 96, 64, "Свой размер")
    set_number(page, "gen-steps", 3)
    check_radio(page, "gen-seed-mode", "Заданное")
    expect(page.locator("#gen-seed input")).to_have_value(re.compile(r"^\d+$"))  # a fresh seed, not blank
    set_number(page, "gen-seed", 4242)
    assert run_and_wait(page, "gen") == "done"

    studio_server.restart()

    page = open_page(studio_server.url, locale="ru-RU")
    open_tab(page, "История")
    fill_text(page, "hist-search", "байкал")  # another case of the same Cyrillic word
    page.locator("#hist-find").click()
    images = gallery_images(page, "hist-gallery")
    expect(page.locator("#hist-summary")).to_contain_text("Картинок: 1.")
    expect(images).to_have_count(1)
    images.first.click()
    details = page.locator("#hist-details")
    details.get_by_text("Заснеженный Байкал на рассвете").wait_for()
    assert "4242" in details.inner_text() and "96 × 64" in details.inner_text()
    screenshot(page, "history-ru-selected")

    page.locator("#hist-use").click()
    page.locator("#gen-run").wait_for(state="visible")
    assert page.locator("#gen-prompt textarea").input_value() == "Заснеженный Байкал на рассвете"
    assert page.locator("#gen-seed input").input_value() == "4242"
    assert page.locator("#gen-width input").input_value() == "96"

    open_tab(page, "История")
    images.first.click()
    page.locator("#hist-delete").click()
    page.locator("#hist-confirm-yes").click()  # delete asks first
    page.locator("#hist-status").get_by_text("Удалено").wait_for()
    expect(gallery_images(page, "hist-gallery")).to_have_count(0)
    expect(page.locator("#hist-summary")).to_contain_text("ничего не найдено")


def test_system_page_shows_the_machine_and_unloads(studio_server, open_page) -> None:
    page = open_page(studio_server.url, locale="en-US")
    fill_text(page, "gen-prompt", "anything, to load a model")
    custom_size(page, 64, 64, "Custom size")
    set_number(page, "gen-steps", 2)
    assert run_and_wait(page, "gen") == "done"

    open_tab(page, "System")
    page.locator("#sys-device").get_by_text("cpu").first.wait_for()
    assert page.locator("#sys-memory .is-meter").count() >= 1
    assert "tiny-z-image" in page.locator("#sys-loaded").inner_text()
    assert "Tiny Z-Image (offline, noise)" in page.locator("#sys-models").inner_text()
    screenshot(page, "system-en")

    page.locator("#sys-unload").click()
    page.locator("#sys-status").get_by_text("Unloaded tiny-z-image").wait_for()
    assert "No model is loaded" in page.locator("#sys-loaded").inner_text()


def test_system_page_download_explains_an_offline_failure(studio_server, open_page) -> None:
    # The test machine has no network (HF_HUB_OFFLINE=1): a download must end in a readable message.
    page = open_page(studio_server.url, locale="ru-RU")
    open_tab(page, "Система")
    expect(page.locator("#sys-models tr[data-model=z-image-turbo]")).to_contain_text("не скачана")
    page.locator("#sys-models tr[data-model=z-image-turbo] .is-row-download").click()
    page.locator("#sys-ask-yes").click()
    error = page.locator("#sys-download-status .is-error")
    error.wait_for(timeout=60_000)
    expected = "Скачивание не удалось. Модель z-image-turbo нельзя скачать: HF_HUB_OFFLINE=1 запрещает"
    assert expected in error.inner_text()
    expect(page.locator("#sys-download")).to_be_enabled()
    screenshot(page, "system-ru-download-failed")


def test_history_pages_reach_every_image(studio_server, open_page) -> None:
    from imagestudio.ui.history_page import PAGE_SIZE

    # More images than one page holds, made through the job API (the same queue and history).
    wanted = PAGE_SIZE + 4
    body = {"kind": "generate", "model": "tiny-z-image", "width": 16, "height": 16, "steps": 1}
    made = 0
    with httpx.Client(base_url=studio_server.url, timeout=120) as client:
        while made < wanted:
            count = min(16, wanted - made)
            job = client.post("/api/jobs", json={**body, "prompt": "листопад страницы", "count": count})
            assert job.status_code == 202, job.text
            job_id = job.json()["id"]

            def ended(job_id: str = job_id) -> str | None:
                state = client.get(f"/api/jobs/{job_id}").json()["state"]
                return None if state in ("queued", "running") else state

            assert wait_until(ended, 60, "the job to end") == "done"
            made += count

    page = open_page(studio_server.url, locale="ru-RU")
    open_tab(page, "История")
    fill_text(page, "hist-search", "листопад")
    page.locator("#hist-find").click()
    images = gallery_images(page, "hist-gallery")
    # The summary first: until the search has answered, the gallery already holds a page of every
    # image in History (other tests' too), and on a busy machine the answer takes seconds.
    expect(page.locator("#hist-summary")).to_contain_text(
        f"Картинок: {wanted}. Страница 1 из 2.", timeout=SLOW_MS
    )
    expect(images).to_have_count(PAGE_SIZE)
    expect(page.locator("#hist-newer")).to_be_disabled()
    page.locator("#hist-older").click()
    expect(images).to_have_count(wanted - PAGE_SIZE, timeout=SLOW_MS)
    expect(page.locator("#hist-summary")).to_contain_text("Страница 2 из 2.", timeout=SLOW_MS)
    expect(page.locator("#hist-older")).to_be_disabled()
    screenshot(page, "history-ru-page-2")
    page.locator("#hist-newer").click()
    expect(images).to_have_count(PAGE_SIZE, timeout=SLOW_MS)
