"""Shared fixtures: an isolated app home, settings, and the tiny models built once per session.

No test touches the network: the hub is forced offline for the whole run, and every model used is a
tiny random-weight pipeline built locally from the real diffusers/transformers classes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC = REPO_ROOT / "src"


def pytest_configure(config: pytest.Config) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.pop("IMAGESTUDIO_CONFIG", None)


@pytest.fixture(scope="session")
def shared_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models folder per test session (per xdist worker), with both tiny models built into it."""
    from imagestudio.models.tiny import ensure_tiny_model

    folder = tmp_path_factory.mktemp("models")
    for model_id in ("tiny-z-image", "tiny-qwen-image-edit"):
        ensure_tiny_model(model_id, folder / model_id)
    return folder


@pytest.fixture
def app_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private IMAGESTUDIO_HOME and working directory, so no test sees the user's files."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("IMAGESTUDIO_HOME", str(home))
    monkeypatch.delenv("IMAGESTUDIO_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def config_file(app_home: Path, shared_models_dir: Path) -> Path:
    """A config.yaml pointing at the shared tiny models and a private outputs folder."""
    path = app_home / "config.yaml"
    path.write_text(
        f"storage:\n  models_dir: {shared_models_dir}\n  outputs_dir: {app_home / 'outputs'}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def settings(config_file: Path):
    from imagestudio.config import load_settings

    return load_settings(config_file)


@pytest.fixture
def studio(settings) -> Iterator[object]:
    from imagestudio.studio import Studio

    studio = Studio(settings)
    yield studio
    studio.manager.unload()


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for running ``python -m imagestudio`` from the source tree in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


PYTHON = sys.executable
