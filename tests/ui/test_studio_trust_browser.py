"""What makes people trust the studio, in a real browser: a reproduced picture is the same picture,
Cancel stops, and a reload throws no work away (issue: the studio, second pass).

One server for the module (``imagestudio serve`` with the tiny models); each test opens its own browser
context and uses its own prompts in the shared history.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from imagestudio.ui.queue_panel import REFRESH_S
from tests.helpers import write_picture
from tests.ui.conftest import screenshot
from tests.ui.widgets import (
    choose,
    custom_size,
    fill_text,
    gallery_images,
    open_tab,
    paint_stroke,
    run_and_wait,
    set_number,
    wait_progress_state,
    watch_progress,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Bounds for waits on a machine shared by many test runs: generous, and only ever upper bounds.
SLOW_MS = 120_000


def result_pixels(page, elem_id: str) -> np.ndarray:
    """The first picture of a result gallery, decoded (the PNG bytes also carry the run's metadata)."""
    image = gallery_images(page, elem_id).first
    image.wait_for(timeout=SLOW_MS)
    response = page.request.get(image.get_attribute("src"))
    assert response.ok, response.status
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))


def use_from_history(page, words: str, history_tab: str = "History") -> None:
    """Find the one result with ``words`` in History and press "Use these settings"."""
    open_tab(page, history_tab)
    fill_text(page, "hist-search", words)
    page.locator("#hist-find").click()
    images = gallery_images(page, "hist-gallery")
    expect(images).to_have_count(1, timeout=SLOW_MS)
    images.first.click()
    expect(page.locator("#hist-use")).to_be_enabled(timeout=SLOW_MS)
    page.locator("#hist-use").click()


def load_start_picture(page, picture: Path) -> None:
    if not page.locator("#gen-source").is_visible():
        page.locator("#gen-source-box").click()
    # The closed accordion mounts the picture editor when it opens: a file given to it before then goes
    # to an input that is about to be replaced, and no upload happens.
    page.locator("#gen-source").wait_for(state="visible")
    page.locator("#gen-source button[aria-label=Brush]").wait_for(state="attached")
    if page.locator("#gen-size input").input_value() == "As the starting picture":
        choose(page, "gen-size", "Custom size")  # so that the upload's own switch is seen below
    page.locator("#gen-source input[type=file]").first.set_input_files(str(picture))
    # The upload has reached the server: its handler switched the size to the picture's own.
    expect(page.locator("#gen-size input")).to_have_value("As the starting picture", timeout=SLOW_MS)


def test_use_these_settings_on_a_text_to_image_result_reproduces_its_pixels(
    studio_server, open_page, tmp_path: Path
) -> None:
    page = open_page(studio_server.url)
    fill_text(page, "gen-prompt", "a reproducible harbour at dawn")
    custom_size(page, 64, 64, "Custom size")
    set_number(page, "gen-steps", 3)
    assert run_and_wait(page, "gen", timeout_ms=SLOW_MS) == "done"
    first = result_pixels(page, "gen-gallery")

    # A start picture left in the editor from other work must not turn the rerun into img2img.
    load_start_picture(page, write_picture(tmp_path / "leftover.png", 11, (64, 64)))
    use_from_history(page, "reproducible harbour")
    expect(page.get_by_role("tab", name="Generate")).to_have_attribute(
        "aria-selected", "true", timeout=SLOW_MS
    )
    assert run_and_wait(page, "gen", timeout_ms=SLOW_MS) == "done"
    assert np.array_equal(result_pixels(page, "gen-gallery"), first)


def test_use_these_settings_on_an_inpainted_result_brings_back_picture_mask_and_strength(
    studio_server, open_page, tmp_path: Path
) -> None:
    page = open_page(studio_server.url)
    load_start_picture(page, write_picture(tmp_path / "start.png", 12, (64, 64)))
    paint_stroke(page)
    fill_text(page, "gen-prompt", "a reproducible inpainted meadow")
    set_number(page, "gen-steps", 6)
    set_number(page, "gen-strength", 0.8)
    assert run_and_wait(page, "gen", timeout_ms=SLOW_MS) == "done"
    first = result_pixels(page, "gen-gallery")
    open_tab(page, "History")
    fill_text(page, "hist-search", "inpainted meadow")
    page.locator("#hist-find").click()
    gallery_images(page, "hist-gallery").first.click()
    expect(page.locator("#hist-details")).to_contain_text("0.8", timeout=SLOW_MS)
    # It ran as an inpaint: its start picture and its mask are kept.
    expect(gallery_images(page, "hist-inputs")).to_have_count(2, timeout=SLOW_MS)

    # The form forgets the picture, the mask and the strength…
    open_tab(page, "Generate")
    load_start_picture(page, write_picture(tmp_path / "other.png", 16, (64, 64)))
    set_number(page, "gen-strength", 0.3)
    fill_text(page, "gen-prompt", "something else")
    # … and "Use these settings" brings all three back: the rerun is the same picture.
    use_from_history(page, "inpainted meadow")
    expect(page.get_by_role("tab", name="Generate")).to_have_attribute(
        "aria-selected", "true", timeout=SLOW_MS
    )
    expect(page.locator("#gen-strength input[type=number]")).to_have_value("0.8", timeout=SLOW_MS)
    expect(page.locator("#gen-source canvas").first).to_be_visible()
    screenshot(page, "generate-en-use-restores-start-picture")
    assert run_and_wait(page, "gen", timeout_ms=SLOW_MS) == "done"
    assert np.array_equal(result_pixels(page, "gen-gallery"), first)
    # And it was recorded as the same kind of run (inpainting, with its start picture and mask).
    open_tab(page, "History")
    fill_text(page, "hist-search", "inpainted meadow")
    page.locator("#hist-find").click()
    expect(gallery_images(page, "hist-gallery")).to_have_count(2, timeout=SLOW_MS)
    gallery_images(page, "hist-gallery").first.click()
    expect(gallery_images(page, "hist-inputs")).to_have_count(2, timeout=SLOW_MS)


def test_use_these_settings_on_an_edit_restores_its_seed_and_reproduces_its_pixels(
    studio_server, open_page, tmp_path: Path
) -> None:
    page = open_page(studio_server.url)
    open_tab(page, "Edit")
    page.locator("#edit-image-1 input[type=file]").set_input_files(
        str(write_picture(tmp_path / "room.png", 13, (64, 64)))
    )
    page.locator("#edit-image-1 img").wait_for(timeout=SLOW_MS)
    fill_text(page, "edit-instruction", "a reproducible blue sofa")
    set_number(page, "edit-steps", 2)
    assert run_and_wait(page, "edit", timeout_ms=SLOW_MS) == "done"
    first = result_pixels(page, "edit-gallery")
    seed = page.locator("#edit-info").inner_text()

    # Coming back later: a fresh page, whose Edit tab has not been opened yet.
    page.reload()
    page.locator("#gen-run").wait_for(state="visible", timeout=SLOW_MS)
    use_from_history(page, "reproducible blue sofa")
    expect(page.get_by_role("tab", name="Edit")).to_have_attribute("aria-selected", "true", timeout=SLOW_MS)
    recorded = page.locator("#edit-seed input[type=number]")
    expect(recorded).to_be_visible(timeout=SLOW_MS)
    assert recorded.input_value() in seed, (recorded.input_value(), seed)
    assert run_and_wait(page, "edit", timeout_ms=SLOW_MS) == "done"
    assert np.array_equal(result_pixels(page, "edit-gallery"), first)


def test_cancel_says_so_at_once_and_stops_an_img2img_job(studio_server, open_page, tmp_path: Path) -> None:
    page = open_page(studio_server.url)
    load_start_picture(page, write_picture(tmp_path / "big.png", 14, (512, 512)))
    fill_text(page, "gen-prompt", "a cancelled img2img glacier")
    set_number(page, "gen-steps", 100)
    watch_progress(page, "gen")
    page.locator("#gen-run").click()
    page.wait_for_function(
        "() => (window.__progress.gen || []).some(e => e.state === 'running' && e.step >= 2)", timeout=SLOW_MS
    )
    page.locator("#gen-cancel").click()
    # Said at the click, before the server has answered or the pipeline reached its next step.
    bar = page.locator("#gen-progress .is-progress")
    expect(bar).to_have_attribute("data-state", "cancelling", timeout=1_000)
    expect(page.locator("#gen-progress")).to_contain_text("Cancelling…")
    ended = wait_progress_state(page, "gen", ("done", "failed", "cancelled"), timeout_ms=SLOW_MS)
    assert ended == "cancelled"
    states = [entry["state"] for entry in page.evaluate("() => window.__progress.gen")]
    assert "done" not in states
    expect(gallery_images(page, "gen-gallery")).to_have_count(0)
    open_tab(page, "History")
    words = "cancelled img2img glacier"
    fill_text(page, "hist-search", words)
    page.locator("#hist-find").click()
    # The listing for these words (its summary names them) has no picture.
    expect(page.locator("#hist-summary")).to_contain_text(words, timeout=SLOW_MS)
    expect(gallery_images(page, "hist-gallery")).to_have_count(0)


def test_an_idle_page_sends_nothing_to_the_server(studio_server, open_page, tmp_path: Path) -> None:
    """No timer ticks while this browser has no jobs: each tick made Gradio re-read every component that
    ever took part in an event, the start picture's editor included (long tasks every second)."""
    page = open_page(studio_server.url, fake_clock=True)
    load_start_picture(page, write_picture(tmp_path / "idle.png", 15, (256, 256)))
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if request.method == "POST" else None)
    # The page's clock is moved on by four refresh periods at once: a ticking timer would fire four
    # times inside this call. Then one POST of the test's own, awaited: a tick's request, sent before it,
    # would be listed before it.
    page.clock.run_for(int(4 * REFRESH_S * 1000))
    with page.expect_request(lambda request: request.url.endswith("/idle-marker")):
        page.evaluate("() => { fetch('/idle-marker', {method: 'POST'}).catch(() => null); }")
    assert [url.rsplit("/", 1)[-1] for url in sent] == ["idle-marker"]


def test_a_reload_keeps_the_jobs_and_cancel_all_stops_them(studio_server, open_page) -> None:
    page = open_page(studio_server.url)

    def queue(prompt: str, size: int, steps: int) -> None:
        fill_text(page, "gen-prompt", prompt)
        custom_size(page, size, size, "Custom size")
        set_number(page, "gen-steps", steps)
        page.locator("#gen-run").click()

    # A long job first: the short one waits behind it, so all three are in the queue at once (a short
    # job queued first can end before the next click, and the panel never lists them together).
    queue("a long job cancelled after the reload", 512, 100)
    queue("a short job that survives a reload", 64, 4)
    queue("another long job stopped by cancel all", 512, 100)
    rows = page.locator("#is-queue li")
    expect(rows).to_have_count(3, timeout=SLOW_MS)

    page.reload()
    page.locator("#gen-run").wait_for(state="visible", timeout=SLOW_MS)
    # The queue is the server's: after the reload all three are listed again, the first one running.
    expect(rows).to_have_count(3, timeout=SLOW_MS)
    first = page.locator("#is-queue li", has_text="long job cancelled")
    expect(first).to_have_attribute("data-state", "running", timeout=SLOW_MS)
    short = page.locator("#is-queue li", has_text="survives a reload")
    expect(short).to_have_attribute("data-state", "queued")
    expect(page.locator("#is-queue")).to_contain_text("Cancel all my jobs")
    screenshot(page, "generate-en-queue-after-reload")
    # One row's Cancel stops that job only: the short one then runs to its end, and History has it.
    first.locator("button[data-cancel]").click()
    last = page.locator("#is-queue li", has_text="stopped by cancel all")
    expect(last).to_have_attribute("data-state", "running", timeout=SLOW_MS)
    expect(rows).to_have_count(1)
    open_tab(page, "History")
    fill_text(page, "hist-search", "survives a reload")
    page.locator("#hist-find").click()
    expect(gallery_images(page, "hist-gallery")).to_have_count(1, timeout=SLOW_MS)

    page.locator("#is-queue button[data-cancel=all]").click()
    expect(rows).to_have_count(0, timeout=SLOW_MS)
    for words in ("long job cancelled", "stopped by cancel all"):
        fill_text(page, "hist-search", words)
        page.locator("#hist-find").click()
        # The listing for these words (its summary names them) has no picture.
        expect(page.locator("#hist-summary")).to_contain_text(words, timeout=SLOW_MS)
        expect(gallery_images(page, "hist-gallery")).to_have_count(0)
