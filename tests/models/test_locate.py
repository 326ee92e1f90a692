"""The one search order for a model's folder, as the loader (whole folders) and `models list` (any) see it."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagestudio.config import Settings, load_settings
from imagestudio.models import tiny
from imagestudio.models.cache import repo_storage
from imagestudio.models.files import MODEL_INDEX
from imagestudio.models.locate import find_model_dir, locate
from imagestudio.registry import get_model

COMMIT = "0" * 40


def settings_with(app_home: Path, body: str = "") -> Settings:
    path = app_home / "locate.yaml"
    path.write_text(f"{body}storage:\n  models_dir: {app_home / 'models'}\n", encoding="utf-8")
    return load_settings(path)


def folder(path: Path, *, whole: bool) -> Path:
    """A model folder: with ``model_index.json`` when ``whole``, else one stray file (a stopped download)."""
    path.mkdir(parents=True)
    (path / (MODEL_INDEX if whole else "README.md")).write_text("{}", encoding="utf-8")
    return path


@pytest.fixture
def cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))  # as HF_HUB_CACHE would set it
    return tmp_path / "cache"


def snapshot(repo: str, *, whole: bool) -> Path:
    storage = repo_storage(repo)
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT, encoding="utf-8")
    return folder(storage / "snapshots" / COMMIT, whole=whole)


def test_models_dir_then_hub_cache_then_a_partial_folder(app_home: Path, cache_root: Path) -> None:
    spec = get_model("z-image-turbo")
    settings = settings_with(app_home)
    assert locate(spec, settings) == (None, None)
    assert find_model_dir(spec, settings) is None

    local = folder(settings.models_dir / spec.id, whole=False)
    assert locate(spec, settings) == (local, "models_dir")  # found, to be reported as partial
    assert find_model_dir(spec, settings) is None  # never loaded

    cached = snapshot("Tongyi-MAI/Z-Image-Turbo", whole=True)
    assert locate(spec, settings) == (cached, "hub_cache")  # before the partial local folder
    assert find_model_dir(spec, settings) == cached

    (local / MODEL_INDEX).write_text("{}", encoding="utf-8")
    assert locate(spec, settings) == (local, "models_dir")  # a whole local folder comes first
    assert find_model_dir(spec, settings) == local


def test_a_cache_snapshot_without_an_index_is_found_never_loaded(app_home: Path, cache_root: Path) -> None:
    spec = get_model("z-image-turbo")
    settings = settings_with(app_home)
    cached = snapshot("Tongyi-MAI/Z-Image-Turbo", whole=False)
    assert locate(spec, settings) == (cached, "hub_cache")
    assert find_model_dir(spec, settings) is None


def test_a_configured_path_is_the_only_place_searched(app_home: Path, tmp_path: Path) -> None:
    spec = get_model("z-image-turbo")
    configured = tmp_path / "elsewhere"
    settings = settings_with(app_home, f"models:\n  z-image-turbo:\n    path: {configured}\n")
    folder(settings.models_dir / spec.id, whole=True)  # ignored while the path is set
    assert locate(spec, settings) == (None, "config")
    assert find_model_dir(spec, settings) is None

    folder(configured, whole=False)
    assert locate(spec, settings) == (configured, "config")
    assert find_model_dir(spec, settings) is None

    (configured / MODEL_INDEX).write_text("{}", encoding="utf-8")
    assert find_model_dir(spec, settings) == configured


def test_a_tiny_model_is_built_only_when_asked(app_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Path] = []

    def builder(dest: Path) -> Path:  # stands in for the slow real build; ensure_tiny_model is under test
        built.append(dest)
        (dest / MODEL_INDEX).write_text("{}", encoding="utf-8")
        return dest

    monkeypatch.setitem(tiny.TINY_BUILDERS, "tiny-z-image", builder)
    spec = get_model("tiny-z-image")
    settings = settings_with(app_home)
    assert find_model_dir(spec, settings, build_tiny=False) is None
    assert built == []
    assert find_model_dir(spec, settings) == settings.models_dir / spec.id
    assert find_model_dir(spec, settings) == settings.models_dir / spec.id  # built once, then found
    assert len(built) == 1
