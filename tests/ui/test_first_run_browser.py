"""A first start: nothing downloaded, not even the offline models built yet.

The studio must open on what can run (the offline tiny models, built on first use), make a picture on
the first click, and say with a banner which real model to download, how big it is, how it would run on
this machine, and that the offline model draws noise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from imagestudio.registry import MODELS
from tests.ui.conftest import StudioServer, screenshot, studio_running
from tests.ui.widgets import fill_text, gallery_images, open_tab, run_and_wait

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    home = tmp_path_factory.mktemp("fresh-home")
    models = home / "models"
    models.mkdir()
    with studio_running(home, models) as server:
        yield server


def download_size(server: StudioServer, model_id: str, weights: str) -> int:
    """What the doctor says a download of ``weights`` fetches (published sizes: the same on any machine)."""
    from imagestudio.config import load_settings
    from imagestudio.doctor import run_doctor

    entry = run_doctor(load_settings(server.config), [model_id]).models[0]
    return next(r.download_bytes for r in entry.variants if r.variant.name == weights)


def test_first_start_with_an_empty_models_folder_makes_a_picture_on_the_first_click(
    fresh_server: StudioServer, open_page
) -> None:
    assert not any(Path(fresh_server.home, "models").iterdir())
    page = open_page(fresh_server.url)
    banner = page.locator("#gen-first-run-text")
    expect(banner).to_contain_text("Z-Image-Turbo is not on this computer yet")
    # The weights the doctor recommends for this machine (its RAM decides), their size and command.
    weights = banner.locator("code").get_attribute("data-weights")
    assert weights in {v.name for v in MODELS["z-image-turbo"].weight_variants}
    expect(banner).to_contain_text(f"{download_size(fresh_server, 'z-image-turbo', weights) / 1e9:.1f} GB")
    flag = "" if weights == "bf16" else f" --weights {weights}"
    expect(banner.locator("code")).to_have_text(f"imagestudio models download z-image-turbo{flag}")
    expect(banner).to_contain_text("noise")
    # The doctor's verdict for this machine, before any download.
    expect(banner.locator(".is-verdict")).to_contain_text("On this machine:", timeout=90_000)
    # The page opened on the offline model, and says what it draws while its list is closed.
    expect(page.locator("#gen-model input")).to_have_value("Tiny Z-Image (offline, noise)")
    expect(page.locator("#gen-model")).to_contain_text("Random weights: this offline model draws noise")
    screenshot(page, "first-run-en")

    fill_text(page, "gen-prompt", "the very first picture")
    assert run_and_wait(page, "gen", timeout_ms=180_000) == "done"
    expect(gallery_images(page, "gen-gallery")).to_have_count(1)
    expect(page.locator("#gen-info [data-noise]")).to_contain_text("Noise is expected")
    screenshot(page, "first-run-en-done")

    # The banner's Download fails readably here (no network), next to its button.
    page.locator("#gen-first-run-download").click()
    page.locator("#gen-first-run-ask-yes").click()
    expect(page.locator("#gen-first-run-status .is-error")).to_contain_text("Download failed", timeout=60_000)

    open_tab(page, "Edit")
    edit_banner = page.locator("#edit-first-run-text")
    expect(edit_banner).to_contain_text("Qwen-Image-Edit-2511 is not on this computer yet")
    expect(page.locator("#edit-model input")).to_have_value("Tiny Qwen edit (offline, noise)")


def test_the_banner_reads_in_russian(fresh_server: StudioServer, open_page) -> None:
    page = open_page(fresh_server.url, locale="ru-RU")
    banner = page.locator("#gen-first-run-text")
    expect(banner).to_contain_text("Z-Image-Turbo ещё нет на этом компьютере")
    expect(banner).to_contain_text("шум")
    expect(banner.locator(".is-verdict")).to_contain_text("На этой машине:", timeout=90_000)
    screenshot(page, "first-run-ru")


def test_system_page_lists_each_variant_with_its_own_download_button(
    fresh_server: StudioServer, open_page
) -> None:
    """Each real model's weight variants are rows with their state and size, and each missing one has its
    own Download button showing what it fetches: the download a button starts is of its row's variant (it
    fails here, readably: no network), through the one download event and its guards."""
    page = open_page(fresh_server.url, locale="en-US")
    open_tab(page, "System")
    row = page.locator("#sys-models tr[data-variant-of=z-image-turbo][data-variant=gguf-q4_k_m]")
    expect(row).to_have_attribute("data-state", "missing")
    expect(row).to_contain_text("not downloaded")
    expect(row).to_contain_text("13.2 GB")  # the file plus the base model's text encoder, VAE, configs
    rows = page.locator("#sys-models tr[data-variant-of=qwen-image-edit-2511]")
    expect(rows).to_have_count(7)  # every GGUF and SDNQ variant
    # One button per missing model and variant, none for the offline models (built on first use).
    expect(rows.locator(".is-row-download")).to_have_count(7)
    expect(page.locator("#sys-models tr[data-state=tiny] .is-row-download")).to_have_count(0)
    expect(page.locator("#sys-download-model")).to_have_count(0)  # no dropdown to pick from any more
    button = row.locator(".is-row-download")
    size = download_size(fresh_server, "z-image-turbo", "gguf-q4_k_m")
    expect(button).to_have_text(f"Download (~{size / 1e9:.1f} GB)")
    screenshot(page, "system-variants-en")

    qwen = page.locator("#sys-models tr[data-variant-of=qwen-image-edit-2511][data-variant=gguf-q3_k_m]")
    qwen.locator(".is-row-download").click()
    page.locator("#sys-ask-yes").click()
    expect(page.locator("#sys-download-status .is-error")).to_contain_text("Download failed", timeout=60_000)
    started = page.request.get(f"{fresh_server.url}/api/models/qwen-image-edit-2511/download").json()
    assert started["weights"] == "gguf-q3_k_m" and started["status"] == "failed"
    expect(page.locator("#sys-download")).to_be_enabled()  # idle again: the row buttons work again

    # Guard: while a download runs Gradio disables the one download event's button; a row click then
    # starts nothing, and the row buttons look disabled.
    def last_download() -> tuple[int, str]:
        answer = page.request.get(f"{fresh_server.url}/api/models/z-image-turbo/download")
        return answer.status, answer.text()  # 404 when never started; an earlier test may have started one

    before = last_download()
    page.locator("#sys-download").evaluate("(b) => { b.disabled = true; }")
    expect(button).to_have_css("pointer-events", "none")
    page.locator("#sys-download").evaluate("(b) => { b.dataset.choice = 'untouched'; }")
    button.dispatch_event("click")
    # The row's script runs inside the click: had it pressed the bridge, it would have left the row's
    # choice on it first.
    expect(page.locator("#sys-download")).to_have_attribute("data-choice", "untouched")
    assert last_download() == before
    page.locator("#sys-download").evaluate("(b) => { b.disabled = false; }")

    button.click()
    page.locator("#sys-ask-yes").click()
    expect(page.locator("#sys-download-status .is-error")).to_contain_text("z-image-turbo", timeout=60_000)
    started = page.request.get(f"{fresh_server.url}/api/models/z-image-turbo/download").json()
    assert started["weights"] == "gguf-q4_k_m" and started["status"] == "failed"
