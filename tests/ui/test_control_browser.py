"""Upscale under results and in History, the control slot with its map, and the hires switch, in Chromium.

The studio's default upscaler is the tiny one here (``upscale.default_upscaler: tiny-upscaler``), as a
user without the real upscaler's download would set it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.helpers import write_picture
from tests.ui.conftest import StudioServer, screenshot, studio_running
from tests.ui.test_studio_trust_browser import result_pixels, use_from_history
from tests.ui.widgets import (
    check_radio,
    custom_size,
    fill_text,
    gallery_images,
    open_tab,
    run_and_wait,
    set_number,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def control_server(
    tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path
) -> Iterator[StudioServer]:
    home = tmp_path_factory.mktemp("control-home")
    with studio_running(home, shared_models_dir, "upscale:\n  default_upscaler: tiny-upscaler\n") as server:
        yield server


def press_and_wait(page, prefix: str, button: str, timeout_ms: int = 90_000) -> str:
    """Press ``button`` (a job that ``prefix``'s panel follows) and wait for that job's end."""
    return run_and_wait(page, prefix, timeout_ms, button=button)


def first_result_size(page, gallery: str = "gen-gallery") -> tuple[int, int]:
    image = gallery_images(page, gallery).first
    image.wait_for()
    page.wait_for_function(
        "(id) => { const i = document.querySelector(`#${id} img`); "
        "return i && i.complete && i.naturalWidth; }",
        arg=gallery,
    )
    return tuple(image.evaluate("i => [i.naturalWidth, i.naturalHeight]"))


def generate(page, prompt: str, size: int = 64) -> None:
    fill_text(page, "gen-prompt", prompt)
    custom_size(page, size, size, "Custom size")
    set_number(page, "gen-steps", 2)
    assert run_and_wait(page, "gen") == "done"


def test_upscale_a_result_then_a_history_picture(control_server, open_page) -> None:
    page = open_page(control_server.url, locale="en-US")
    expect(page.locator("#gen-upscale-this")).to_be_disabled()
    generate(page, "a lighthouse to enlarge")
    assert first_result_size(page) == (64, 64)
    assert press_and_wait(page, "gen", "gen-upscale-this") == "done"
    assert first_result_size(page) == (128, 128)

    open_tab(page, "History")
    gallery_images(page, "hist-gallery").first.click()  # the newest: the enlarged one
    expect(page.locator("#hist-upscale-this")).to_be_enabled()
    assert press_and_wait(page, "gen", "hist-upscale-this") == "done"
    expect(page.get_by_role("tab", name="Generate")).to_have_attribute("aria-selected", "true")
    assert first_result_size(page) == (256, 256)
    screenshot(page, "generate-en-upscaled")


def test_control_slot_shows_the_map_and_the_hires_switch_enlarges(
    control_server, open_page, tmp_path: Path
) -> None:
    picture = tmp_path / "house.png"
    drawing = Image.new("RGB", (64, 64), "black")
    drawing.paste((255, 255, 255), (16, 16, 48, 48))
    drawing.save(picture)
    page = open_page(control_server.url, locale="en-US")
    page.locator("#gen-control-box").click()
    page.locator("#gen-control-image input[type=file]").set_input_files(str(picture))
    expect(page.locator("#gen-control-map img")).to_be_visible()
    generate(page, "a house, detailed, morning light")
    expect(page.locator("#gen-info")).to_contain_text("Done")

    # A weight outside the card's range cannot be typed past the slider; a bad start/end is refused.
    set_number(page, "gen-control-start", 0.8)
    set_number(page, "gen-control-end", 0.2)
    page.locator("#gen-run").click()
    expect(page.locator("#gen-control-error")).to_contain_text("must come before its end")
    set_number(page, "gen-control-start", 0)
    set_number(page, "gen-control-end", 1)

    # A fresh page (no control picture): the hires switch alone.
    page = open_page(control_server.url, locale="en-US")
    page.locator("#gen-control-box").click()
    page.locator("#gen-hires input[type=checkbox]").check()
    generate(page, "a house in the fog")
    assert first_result_size(page) == (128, 128)
    screenshot(page, "generate-en-control-hires")

    # "Use these settings" brings back the first pass's size and the hires switch, not the final size.
    page.locator("#gen-hires input[type=checkbox]").uncheck()
    open_tab(page, "History")
    gallery_images(page, "hist-gallery").first.click()
    page.locator("#hist-use").click()
    expect(page.get_by_role("tab", name="Generate")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#gen-hires input[type=checkbox]")).to_be_checked()
    expect(page.locator("#gen-width input[type=number]").first).to_have_value("64")


def test_use_these_settings_restores_the_control_and_reproduces_its_pixels(
    control_server, open_page, tmp_path: Path
) -> None:
    page = open_page(control_server.url, locale="en-US")
    page.locator("#gen-control-box").click()
    page.locator("#gen-control-image input[type=file]").set_input_files(
        str(write_picture(tmp_path / "steer.png", 21, (64, 64)))
    )
    expect(page.locator("#gen-control-map img")).to_be_visible()
    set_number(page, "gen-control-weight", 0.7)
    set_number(page, "gen-control-start", 0.25)
    set_number(page, "gen-control-end", 0.75)
    fill_text(page, "gen-prompt", "a reproducible steered tower")
    custom_size(page, 64, 64, "Custom size")
    set_number(page, "gen-steps", 4)
    assert run_and_wait(page, "gen") == "done"
    first = result_pixels(page, "gen-gallery")

    # The form moves on: another picture, type, weight and window…
    page.locator("#gen-control-image input[type=file]").set_input_files(
        str(write_picture(tmp_path / "other.png", 22, (64, 64)))
    )
    check_radio(page, "gen-control-type", "My own map")
    set_number(page, "gen-control-weight", 0.8)
    set_number(page, "gen-control-start", 0)
    set_number(page, "gen-control-end", 1)
    fill_text(page, "gen-prompt", "something else")
    # … and "Use these settings" brings the control back: the rerun is the same picture.
    use_from_history(page, "steered tower")
    expect(page.get_by_role("tab", name="Generate")).to_have_attribute("aria-selected", "true")
    canny = page.locator("#gen-control-type label", has_text="Edges (canny)").locator("input")
    expect(canny).to_be_checked()
    expect(page.locator("#gen-control-weight input[type=number]")).to_have_value("0.7")
    expect(page.locator("#gen-control-start input[type=number]")).to_have_value("0.25")
    expect(page.locator("#gen-control-end input[type=number]")).to_have_value("0.75")
    expect(page.locator("#gen-control-map img")).to_be_visible()
    screenshot(page, "generate-en-use-restores-control")
    assert run_and_wait(page, "gen") == "done"
    assert np.array_equal(result_pixels(page, "gen-gallery"), first)


def test_depth_control_runs_its_detector_in_the_job(control_server, open_page, tmp_path: Path) -> None:
    page = open_page(control_server.url, locale="en-US")
    page.locator("#gen-control-box").click()
    check_radio(page, "gen-control-type", "Depth")
    page.locator("#gen-control-image input[type=file]").set_input_files(
        str(write_picture(tmp_path / "room.png", 23, (64, 64)))
    )
    # The pages run no model: a depth map is made by the job, so nothing is previewed.
    expect(page.locator("#gen-control-image img")).to_be_visible()
    expect(page.locator("#gen-control-map img")).to_have_count(0)
    # Straight lines are OpenCV's (no model): previewed like canny. Pose, like depth, is made by the job.
    check_radio(page, "gen-control-type", "Straight lines (mlsd)")
    expect(page.locator("#gen-control-map img")).to_be_visible()
    check_radio(page, "gen-control-type", "Pose")
    expect(page.locator("#gen-control-map img")).to_have_count(0)
    check_radio(page, "gen-control-type", "Soft edges (HED)")  # a detector model's too
    expect(page.locator("#gen-control-map img")).to_have_count(0)
    check_radio(page, "gen-control-type", "Depth")
    generate(page, "a reading nook under a lamp")
    open_tab(page, "History")
    gallery_images(page, "hist-gallery").first.click()
    expect(page.locator("#hist-details")).to_contain_text("Depth · 0.75 · 0.0–1.0")
