"""The System page's models table: a Download button on each row that can be fetched, with its size."""

from __future__ import annotations

import re

from imagestudio.ui.common import UIContext
from imagestudio.ui.system_page import render
from imagestudio.ui.texts import Texts


def _ctx() -> UIContext:
    return UIContext(backend=None, texts=Texts.load())  # type: ignore[arg-type]


def _variant(name: str, state: str, size: int) -> dict[str, object]:
    return {"variant": name, "state": state, "download_bytes": size, "quality": "good"}


INFO = {
    "models": [
        {"id": "tiny-z-image", "state": "tiny", "variants": [_variant("gguf-q4_0", "tiny", 0)]},
        {
            "id": "z-image-turbo",
            "state": "missing",
            "download_bytes": 32_900_000_000,
            "variants": [
                _variant("bf16", "missing", 32_900_000_000),
                _variant("gguf-q8_0", "present", 15_500_000_000),
                _variant("gguf-q4_k_m", "missing", 13_200_000_000),
            ],
        },
        {
            "id": "qwen-image-edit-2511",
            "state": "partial",
            "size_bytes": 1_000,
            "download_bytes": 57_700_000_000,
        },
    ]
}


def buttons(html: str) -> dict[str, str]:
    """Each row button's choice → its label."""
    found = re.findall(r"<button[^>]*class='is-row-download' data-choice='([^']+)'>([^<]+)</button>", html)
    return dict(found)


def test_each_missing_model_and_variant_has_its_own_button_with_its_size() -> None:
    models = render(_ctx(), INFO, "en")[4]
    assert buttons(models) == {
        "z-image-turbo": "Download (~32.9 GB)",
        "z-image-turbo:gguf-q4_k_m": "Download (~13.2 GB)",
        # A partial download resumes: the button says what the whole download fetches, not what is here.
        "qwen-image-edit-2511": "Download (~57.7 GB)",
    }


def test_the_buttons_read_in_russian() -> None:
    models = render(_ctx(), INFO, "ru")[4]
    assert buttons(models)["z-image-turbo:gguf-q4_k_m"] == "Скачать (~13,2 ГБ)"  # a decimal comma in Russian


def test_a_choice_cannot_break_out_of_its_attribute() -> None:
    hostile = {"models": [{"id": "x' onclick='alert(1)", "state": "missing", "download_bytes": 0}]}
    models = render(_ctx(), hostile, "en")[4]
    assert "onclick='alert" not in models and "x&#x27; onclick=&#x27;alert(1)" in models
