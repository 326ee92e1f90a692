"""Model states from the disk alone, the settings they read, and the loader's refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagestudio.config import load_settings
from imagestudio.errors import ConfigError, ModelNotAvailable
from imagestudio.models.cache import repo_storage
from imagestudio.models.state import list_states, model_state, require_model_dir
from imagestudio.registry import get_model

REPO_ROOT = Path(__file__).resolve().parents[2]


def settings_with(app_home: Path, body: str):
    path = app_home / "state.yaml"
    path.write_text(f"{body}storage:\n  models_dir: {app_home / 'models'}\n", encoding="utf-8")
    return load_settings(path)


def test_states_from_the_disk(app_home: Path, tiny_copy, tmp_path: Path) -> None:
    good = tiny_copy()
    broken = tiny_copy("tiny-qwen-image-edit")
    (broken / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    settings = settings_with(
        app_home,
        f"models:\n  z-image-turbo:\n    path: {good}\n  qwen-image-edit-2511:\n    path: {broken}\n",
    )
    states = {s.id: s for s in list_states(settings, cache_dir=tmp_path / "no-cache")}
    assert (states["z-image-turbo"].state, states["z-image-turbo"].source) == ("present", "config")
    assert states["z-image-turbo"].size_bytes == sum(p.stat().st_size for p in good.rglob("*") if p.is_file())
    assert states["qwen-image-edit-2511"].state == "partial"
    assert states["qwen-image-edit-2511"].problem == "vae: no weights (*.safetensors)"
    assert states["tiny-z-image"].state == "tiny"  # not built yet: built on first use, nothing to download
    assert states["tiny-z-image"].download_bytes == 0

    settings = settings_with(app_home, f"models:\n  z-image-turbo:\n    path: {tmp_path / 'gone'}\n")
    state = model_state(get_model("z-image-turbo"), settings, tmp_path / "no-cache")
    assert state.state == "missing"
    assert state.problem == f"models.z-image-turbo.path = {tmp_path / 'gone'} does not exist"


def test_loader_refuses_partial_folders(app_home: Path, tiny_copy) -> None:
    folder = tiny_copy()
    path = folder / "text_encoder" / "model.safetensors"
    os.truncate(path, path.stat().st_size - 1)
    settings = settings_with(app_home, f"models:\n  z-image-turbo:\n    path: {folder}\n")
    with pytest.raises(ModelNotAvailable) as refused:
        require_model_dir(get_model("z-image-turbo"), settings)
    message = refused.value.message
    assert message.startswith(
        f"z-image-turbo at {folder} is incomplete: text_encoder/model.safetensors: truncated"
    )
    assert "imagestudio models verify z-image-turbo" in message
    assert "\n" not in message


def test_interrupted_download_in_the_cache(
    app_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A transfer stopped before the snapshot took shape: partial, and the loader says how to resume."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))  # as HF_HUB_CACHE would set it
    blobs = repo_storage("Tongyi-MAI/Z-Image-Turbo") / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{'a' * 64}.incomplete").write_bytes(b"x" * 1000)
    settings = settings_with(app_home, "")
    state = model_state(get_model("z-image-turbo"), settings)
    assert (state.state, state.size_bytes) == ("partial", 1000)
    with pytest.raises(
        ModelNotAvailable, match=r"only partly downloaded .*imagestudio models download z-image-turbo"
    ):
        require_model_dir(get_model("z-image-turbo"), settings)


def test_download_settings(app_home: Path) -> None:
    settings = settings_with(
        app_home, "downloads:\n  min_free_gb: 10\nmodels:\n  z-image-turbo:\n    repo: me/zit\n"
    )
    assert settings.downloads.min_free_gb == 10
    assert settings.model("z-image-turbo").repo == "me/zit"
    with pytest.raises(ConfigError, match=r"models\.z-image-turbo\.repo"):
        settings_with(app_home, "models:\n  z-image-turbo:\n    repo: not a repo\n")
    with pytest.raises(ConfigError, match=r"downloads\.min_free_gb"):
        settings_with(app_home, "downloads:\n  min_free_gb: -1\n")


def test_example_config_is_the_defaults() -> None:
    example = load_settings(REPO_ROOT / "config.example.yaml")
    assert example.downloads == type(example.downloads)()
    assert example.model("z-image-turbo") == type(example.model("z-image-turbo"))()
