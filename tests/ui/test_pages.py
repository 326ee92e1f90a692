"""Page logic that needs no browser: default models, error routing, history captions."""

from __future__ import annotations

import pytest

from imagestudio.errors import InvalidRequest
from imagestudio.ui.app import default_model
from imagestudio.ui.common import UIContext, routed_errors
from imagestudio.ui.texts import Texts


def test_default_model_is_one_that_is_here(settings) -> None:
    # Only the tiny models are on this machine (the shared test models folder).
    assert default_model(settings, "text-to-image") == "tiny-z-image"
    assert default_model(settings, "edit") == "tiny-qwen-image-edit"


def test_default_model_on_a_first_start_is_the_offline_model_that_can_run(app_home) -> None:
    from imagestudio.config import load_settings

    # Nothing downloaded or built yet: the page opens on the model its first click can run.
    settings = load_settings(None, overrides={"storage": {"models_dir": str(app_home / "empty")}})
    assert default_model(settings, "text-to-image") == "tiny-z-image"
    assert default_model(settings, "edit") == "tiny-qwen-image-edit"


class _NoBackend:
    settings = None


@pytest.fixture
def ctx() -> UIContext:
    return UIContext(backend=_NoBackend(), texts=Texts.load())  # type: ignore[arg-type]


def test_errors_land_under_their_control_and_clear_the_others(ctx: UIContext) -> None:
    slots = {"prompt": "prompt-slot", "width": "size-slot", "height": "size-slot"}
    exc = InvalidRequest("prompt is empty", param="prompt", code="prompt_empty")
    updates = routed_errors(ctx, exc, "ru", slots, "form-slot")
    assert set(updates) == {"prompt-slot", "size-slot", "form-slot"}
    assert "Сначала напишите запрос" in updates["prompt-slot"]
    assert updates["size-slot"] == updates["form-slot"] == ""


def test_errors_about_other_fields_go_next_to_the_button(ctx: UIContext) -> None:
    exc = InvalidRequest("guidance 3 is not allowed", param="guidance_scale")
    updates = routed_errors(ctx, exc, "en", {"prompt": "prompt-slot"}, "form-slot")
    assert "guidance 3 is not allowed" in updates["form-slot"]
    assert updates["prompt-slot"] == ""


def test_bugs_are_reported_generically(ctx: UIContext) -> None:
    updates = routed_errors(ctx, KeyError("internal detail"), "en", {}, "form-slot")
    assert "internal detail" not in updates["form-slot"]
    assert "Something went wrong" in updates["form-slot"]


class _SettingsOnly:
    def __init__(self, settings) -> None:
        self.settings = settings


def test_starting_picture_mask_is_what_was_painted(settings) -> None:
    import numpy as np
    from PIL import Image

    from imagestudio.ui.generate_page import starting_picture

    ctx = UIContext(backend=_SettingsOnly(settings), texts=Texts.load())  # type: ignore[arg-type]
    background = Image.new("RGBA", (64, 48), (10, 120, 200, 255))
    layer = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (8, 8, 24, 20))  # a painted rectangle
    init_image, mask = starting_picture(
        ctx, {"background": background, "layers": [layer], "composite": None}, "ru"
    )
    assert init_image.image.size == (64, 48) and init_image.image.mode == "RGB"
    assert init_image.name == "Исходная картинка"
    pixels = np.asarray(mask.image)
    assert pixels[10, 10] == 255 and pixels[30, 40] == 0
    assert (pixels == 255).sum() == 16 * 12

    # Nothing painted: img2img without a mask; no picture at all: plain text-to-image.
    empty = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    init_only, no_mask = starting_picture(ctx, {"background": background, "layers": [empty]}, "en")
    assert init_only is not None and no_mask is None
    assert starting_picture(ctx, {"background": None, "layers": []}, "en") == (None, None)
    assert starting_picture(ctx, None, "en") == (None, None)
