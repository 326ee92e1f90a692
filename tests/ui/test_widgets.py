"""Progress bar, error line and size presets: plain functions, checked without a browser."""

from __future__ import annotations

import pytest

from imagestudio.jobs.model import JobProgress
from imagestudio.ui import presets
from imagestudio.ui.texts import Texts
from imagestudio.ui.widgets import Progress, bar_html, duration, error_html, progress_html


@pytest.fixture(scope="module")
def texts() -> Texts:
    return Texts.load()


def test_progress_bar_shows_step_eta_and_fraction(texts: Texts) -> None:
    html = progress_html(texts, "en", Progress("running", JobProgress(1, 1, 3, 8, 1.2, 65)))
    assert 'data-step="3"' in html and 'data-steps="8"' in html
    assert 'aria-valuenow="38"' in html  # 3/8 rounded
    assert "Step 3 of 8" in html and "1 min 5 s" in html


def test_progress_over_several_images(texts: Texts) -> None:
    p = Progress("running", JobProgress(image=2, images=3, step=2, steps=4, elapsed_s=0, eta_s=None))
    assert p.fraction == pytest.approx(6 / 12)
    assert "Картинка 2 из 3 · шаг 2 из 4" in progress_html(texts, "ru", p)


def test_progress_states_have_readable_captions(texts: Texts) -> None:
    assert "впереди заданий — 2" in progress_html(texts, "ru", Progress("queued", ahead=2))
    # Running before the first step: the model is loading, or (once it is loaded) the job is starting.
    assert "Loading the model" in progress_html(texts, "en", Progress("running"))
    assert "Starting" in progress_html(texts, "en", Progress("running", loading=False))
    assert progress_html(texts, "en", None) == ""
    assert Progress("done", JobProgress(1, 1, 8, 8, 2.0, None)).fraction == 1.0


def test_durations(texts: Texts) -> None:
    assert duration(texts, "en", 0.2) == "1 s"
    assert duration(texts, "ru", 125) == "2 мин 5 с"
    assert duration(texts, "en", 7260) == "2 h 1 min"


def test_user_text_is_escaped() -> None:
    assert "<script>" not in error_html("<script>alert(1)</script>")
    assert error_html("") == ""
    assert 'data-level="high"' in bar_html("VRAM", 9.5, 10, "9.5 of 10")


def test_presets_are_multiples_of_16_and_unique() -> None:
    values = [p.value for p in presets.SIZE_PRESETS]
    assert len(values) == len(set(values))
    for p in presets.SIZE_PRESETS:
        assert p.width % 16 == 0 and p.height % 16 == 0
    squares = {p.width for p in presets.SIZE_PRESETS if p.width == p.height}
    assert {384, 512, 768, 1024} <= squares


def test_size_choice_round_trip() -> None:
    assert presets.size_of("1280x720", None, None) == (1280, 720)
    assert presets.size_of(presets.CUSTOM_SIZE, 40, 64.0) == (40, 64)
    assert presets.size_of(presets.CUSTOM_SIZE, None, None) == (None, None)
    assert presets.choice_for(1280, 720) == "1280x720"
    assert presets.choice_for(64, 64) == presets.CUSTOM_SIZE
    with pytest.raises(ValueError, match="unknown size"):
        presets.size_of("13x13", None, None)
