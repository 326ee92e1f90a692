"""The config keys added for editing: defaults, bounds, and config.example.yaml staying true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagestudio.config import load_settings
from tests.conftest import REPO_ROOT
from tests.helpers import config_refusal


def test_new_defaults(app_home: Path) -> None:
    settings = load_settings()
    assert settings.device.keep_in_ram is False
    assert (settings.inputs.max_input_bytes, settings.inputs.max_input_pixels) == (50_000_000, 40_000_000)
    edit = settings.model("qwen-image-edit-2511")
    assert edit.reference_vae_area is None and edit.reference_condition_area is None


def test_config_example_is_the_defaults(app_home: Path) -> None:
    example = load_settings(REPO_ROOT / "config.example.yaml")
    defaults = load_settings()
    for section in ("device", "generation", "inputs", "models"):
        assert getattr(example, section) == getattr(defaults, section), section


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("inputs: {max_input_pixels: 100000000}\n", "less than or equal to 89000000"),
        ("inputs: {max_input_bytes: 0}\n", "greater than or equal to 1000"),
        ("device: {keep_in_ram: sometimes}\n", "device.keep_in_ram = 'sometimes'"),
        ("models: {qwen-image-edit-2511: {reference_vae_area: 100}}\n", "greater than or equal to 1024"),
    ],
)
def test_bad_values_are_refused(app_home: Path, text: str, fragment: str) -> None:
    assert re.search(fragment, str(config_refusal(app_home, text)))
