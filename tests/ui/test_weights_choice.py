"""The pages' weights choice: the chosen model's variants, auto leaving the choice to the config."""

from __future__ import annotations

from typing import Any

from imagestudio.ui.common import UIContext
from imagestudio.ui.generate_page import DEFAULT_SIZE, page_requests
from imagestudio.ui.texts import Texts
from imagestudio.ui.weights_choice import weights_choices, weights_value


class _Backend:
    def __init__(self, settings: Any) -> None:
        self.settings = settings


def test_choices_follow_the_model_and_auto_sends_nothing() -> None:
    assert [v for _label, v in weights_choices("tiny-z-image")] == [
        "auto", "bf16", "gguf-q8_0", "gguf-q4_0", "sdnq-int8", "sdnq-uint4"
    ]  # fmt: skip
    assert "gguf-q4_k_m" in [v for _label, v in weights_choices("qwen-image-edit-2511")]
    assert weights_value("auto") is None and weights_value(None) is None
    assert weights_value("sdnq-uint4") == "sdnq-uint4"


def test_the_generate_page_sends_the_chosen_weights(settings) -> None:
    ctx = UIContext(backend=_Backend(settings), texts=Texts.load())  # type: ignore[arg-type]
    fields: dict[str, Any] = {
        "prompt": "a cat", "model": "tiny-z-image", "size": DEFAULT_SIZE, "width": None, "height": None,
        "steps": 2, "seed": 1, "count": 1, "source": None, "strength": 0.6, "variety": 0.0, "improved": None,
    }  # fmt: skip
    (chosen,) = page_requests(ctx, "en", **fields, weights="gguf-q4_0")
    assert chosen.weights == "gguf-q4_0"
    (auto,) = page_requests(ctx, "en", **fields, weights="auto")
    assert auto.weights is None
