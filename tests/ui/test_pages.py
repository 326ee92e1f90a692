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


def test_default_model_falls_back_to_the_registry_default(app_home) -> None:
    from imagestudio.config import load_settings

    settings = load_settings(None, overrides={"storage": {"models_dir": str(app_home / "empty")}})
    assert default_model(settings, "text-to-image") == "z-image-turbo"


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
