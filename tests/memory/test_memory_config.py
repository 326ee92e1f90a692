"""The memory keys of config.yaml: the documents' switches, the new keys, and contradictions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from imagestudio.config import DeviceSettings, load_settings
from imagestudio.errors import ConfigError
from tests.conftest import REPO_ROOT


def load(app_home: Path, text: str):
    path = app_home / "memory.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_the_documents_switches_keep_working(app_home: Path) -> None:
    both = load(app_home, "device: {type: cuda, enable_cpu_offload: true, sequential_offload: true}\n")
    assert both.device.requested_profile == "sequential"
    assert load(app_home, "device: {enable_cpu_offload: true}\n").device.requested_profile == "model_offload"
    assert load(app_home, "device: {}\n").device.requested_profile == "auto"
    agreeing = "device: {memory_profile: model_offload, enable_cpu_offload: true}\n"
    assert load(app_home, agreeing).device.requested_profile == "model_offload"


@pytest.mark.parametrize(
    ("device", "keys"),
    [
        ("{memory_profile: full, enable_cpu_offload: true}", ("memory_profile: full", "enable_cpu_offload")),
        (
            "{memory_profile: group_offload, sequential_offload: true}",
            ("group_offload", "sequential_offload"),
        ),
        (
            "{memory_profile: model_offload, enable_cpu_offload: true, sequential_offload: true}",
            ("model_offload", "sequential_offload"),
        ),
    ],
)
def test_contradictions_are_refused_naming_both_keys(
    app_home: Path, device: str, keys: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError) as info:
        load(app_home, f"device: {device}\n")
    message = info.value.message
    assert all(key in message for key in keys), message
    assert "\n" not in message


def test_new_keys_and_their_bounds(app_home: Path) -> None:
    settings = load(
        app_home, "device: {weights: fp8, vram_reserve_gb: 2.5, vae_tiling: on, memory_profile: full}\n"
    )
    assert (settings.device.weights, settings.device.vram_reserve_gb) == ("fp8", 2.5)
    assert settings.device.vae_tiling == "on"  # YAML reads a bare `on` as true
    assert load(app_home, "device: {vae_tiling: off}\n").device.vae_tiling == "off"
    for bad, expected in (
        ("{weights: fp4}", "device.weights = 'fp4'"),
        ("{vram_reserve_gb: -1}", "device.vram_reserve_gb = -1"),
        ("{memory_profile: turbo}", "device.memory_profile = 'turbo'"),
    ):
        with pytest.raises(ConfigError, match=expected):
            load(app_home, f"device: {bad}\n")


def test_the_example_config_lists_every_device_key() -> None:
    example = yaml.safe_load((REPO_ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    assert set(example["device"]) == set(DeviceSettings.model_fields)
    DeviceSettings.model_validate(example["device"])
