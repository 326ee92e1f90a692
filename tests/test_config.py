from __future__ import annotations

import logging
from pathlib import Path

import pytest

from imagestudio.config import load_settings
from imagestudio.errors import ConfigError
from tests.helpers import config_refusal

DOCUMENTS_CONFIG = """
models:
  z-image-turbo:
    torch_dtype: "bfloat16"
    low_cpu_mem_usage: false

device:
  type: "cuda"
  enable_cpu_offload: true
  sequential_offload: true

generation:
  default_height: 384
  default_width: 384
  default_num_inference_steps: 9
  default_guidance_scale: 0.0
"""


def test_defaults_match_official_recommendations(app_home: Path) -> None:
    settings = load_settings()
    for model_id in ("z-image-turbo", "qwen-image-edit-2511"):
        assert settings.model(model_id).torch_dtype == "bfloat16"
        assert settings.model(model_id).low_cpu_mem_usage is True
        assert settings.model(model_id).path is None
    assert settings.device.type == "auto"
    assert not settings.device.enable_cpu_offload and not settings.device.sequential_offload
    assert (settings.generation.default_width, settings.generation.default_height) == (1024, 1024)
    assert settings.generation.default_guidance_scale == 0.0
    assert settings.models_dir == app_home / "models"
    assert settings.outputs_dir == app_home / "outputs"


def test_the_documents_own_config_loads(app_home: Path) -> None:
    path = app_home / "docs.yaml"
    path.write_text(DOCUMENTS_CONFIG, encoding="utf-8")
    settings = load_settings(path)
    assert settings.device.sequential_offload and settings.device.enable_cpu_offload
    assert settings.generation.default_width == 384
    assert settings.generation.default_num_inference_steps == 9
    assert settings.model("z-image-turbo").low_cpu_mem_usage is False


def test_search_order(app_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.yaml").write_text("generation: {default_width: 512}\n", encoding="utf-8")
    assert load_settings().generation.default_width == 512  # ./config.yaml

    env_file = tmp_path / "env.yaml"
    env_file.write_text("generation: {default_width: 768}\n", encoding="utf-8")
    monkeypatch.setenv("IMAGESTUDIO_CONFIG", str(env_file))
    assert load_settings().generation.default_width == 768  # $IMAGESTUDIO_CONFIG beats ./config.yaml

    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("generation: {default_width: 640}\n", encoding="utf-8")
    assert load_settings(explicit).generation.default_width == 640  # --config beats both


def test_overrides_win_over_the_file(app_home: Path) -> None:
    path = app_home / "c.yaml"
    path.write_text("generation: {default_width: 512, default_height: 512}\n", encoding="utf-8")
    settings = load_settings(path, overrides={"generation": {"default_width": 768}})
    assert settings.generation.default_width == 768
    assert settings.generation.default_height == 512


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("device: {typo: 1}\n", "unknown key 'device.typo'"),
        ("device: {type: tpu}\n", "device.type = 'tpu'"),
        ("models: {z-image-turbo: {torch_dtype: int8}}\n", "'bfloat16', 'float16' or 'float32'"),
        ("generation: {default_width: lots}\n", "generation.default_width = 'lots'"),
        ("generation: {default_num_inference_steps: 0}\n", "greater than or equal to 1"),
        ("models: {sdxl: {}}\n", "unknown model id 'sdxl'"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("device: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_names_key_value_and_allowed(app_home: Path, text: str, expected: str) -> None:
    error = config_refusal(app_home, text)
    assert expected in error.message
    assert "\n" not in error.message


def test_missing_explicit_config_is_an_error(app_home: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(app_home / "nope.yaml")


def test_float16_is_accepted_with_a_warning(app_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = app_home / "fp16.yaml"
    path.write_text("models: {z-image-turbo: {torch_dtype: float16}}\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        settings = load_settings(path)
    assert settings.model("z-image-turbo").torch_dtype == "float16"
    assert "NaN/black" in caplog.text


def test_relative_paths_are_relative_to_the_config_file(app_home: Path) -> None:
    folder = app_home / "cfg"
    folder.mkdir()
    path = folder / "config.yaml"
    path.write_text(
        "storage: {outputs_dir: out, models_dir: m}\nmodels: {z-image-turbo: {path: zimg}}\n",
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert settings.outputs_dir == folder / "out"
    assert settings.models_dir == folder / "m"
    assert settings.model("z-image-turbo").path == folder / "zimg"


def test_loading_settings_creates_nothing(app_home: Path) -> None:
    load_settings()
    assert list(app_home.iterdir()) == []


def test_user_config_is_found_from_any_folder(
    app_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$IMAGESTUDIO_HOME/config.yaml, then the platform config folder; ./config.yaml first."""
    import sys

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    if sys.platform == "win32":
        monkeypatch.setenv("APPDATA", str(xdg))
    platform_file = xdg / "imagestudio" / "config.yaml"
    platform_file.parent.mkdir(parents=True)
    platform_file.write_text(
        "generation: {default_width: 256}\nstorage: {outputs_dir: out}\n", encoding="utf-8"
    )
    if sys.platform != "darwin":
        settings = load_settings()
        assert settings.generation.default_width == 256
        assert settings.outputs_dir == platform_file.parent / "out"  # relative to the file, as always

    (app_home / "config.yaml").write_text("generation: {default_width: 320}\n", encoding="utf-8")
    assert load_settings().generation.default_width == 320  # the app's home beats the platform folder
    (elsewhere / "config.yaml").write_text("generation: {default_width: 512}\n", encoding="utf-8")
    assert load_settings().generation.default_width == 512  # ./config.yaml beats both
