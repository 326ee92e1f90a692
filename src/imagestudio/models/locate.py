"""Where a model's folder is: the one search order every part of the app follows.

1. ``models.<id>.path`` in config.yaml, when set (nothing else is searched then);
2. ``<models_dir>/<id>`` holding a ``model_index.json`` (a plain download, or a built tiny model);
3. the Hugging Face cache's snapshot of the model's repository (``models.<id>.repo`` / ``revision``);
4. ``<models_dir>/<id>`` without ``model_index.json`` (a download that stopped early).

The loader wants a folder that looks whole (:func:`find_model_dir`); ``models list`` also wants the
folders that do not (:func:`locate`), to report them as partial. Only the disk is read: no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from imagestudio.errors import ModelNotAvailable
from imagestudio.models import cache
from imagestudio.models.files import MODEL_INDEX
from imagestudio.registry import ModelSpec

if TYPE_CHECKING:
    from imagestudio.config import Settings

Source = Literal["config", "models_dir", "hub_cache"]


def effective_repo(spec: ModelSpec, settings: Settings) -> str | None:
    """The hub repository this model is fetched from: ``models.<id>.repo`` or the registry's."""
    return settings.model(spec.id).repo or spec.repo_id


def locate(
    spec: ModelSpec, settings: Settings, cache_dir: Path | None = None
) -> tuple[Path | None, Source | None]:
    """Where this model's folder is, complete or not, and which of the places it was found in.

    A configured ``path`` that does not exist gives ``(None, "config")``: nothing else is searched.
    """
    options = settings.model(spec.id)
    if options.path is not None:
        return (options.path, "config") if options.path.exists() else (None, "config")
    local = settings.models_dir / spec.id
    if (local / MODEL_INDEX).is_file():
        return local, "models_dir"
    repo = effective_repo(spec, settings)
    if repo is not None and not spec.tiny:
        snapshot = cache.cached_snapshot(repo, options.revision, cache_dir)
        if snapshot is not None:
            return snapshot, "hub_cache"
    if local.is_dir() and any(local.iterdir()):
        return local, "models_dir"
    return None, None


def find_model_dir(spec: ModelSpec, settings: Settings, *, build_tiny: bool = True) -> Path | None:
    """The folder :func:`locate` finds when it has a ``model_index.json``; None when there is none.

    A tiny model is built on first use into the models directory (unless ``build_tiny`` is false).
    Whether the folder is complete is :func:`imagestudio.models.state.require_model_dir`'s question.
    """
    if spec.tiny and build_tiny and settings.model(spec.id).path is None:
        from imagestudio.models.tiny import ensure_tiny_model

        ensure_tiny_model(spec.id, settings.models_dir / spec.id)
    folder, _source = locate(spec, settings)
    return folder if folder is not None and (folder / MODEL_INDEX).is_file() else None


def not_available(spec: ModelSpec, detail: str = "") -> ModelNotAvailable:
    """The refusal of a model that is not on this machine: its size and the command that fetches it."""
    size_gb = spec.download_bytes / 1000**3
    where = f"{spec.repo_id}, about {size_gb:.1f} GB" if spec.repo_id else "built locally"
    return ModelNotAvailable(
        f"{spec.id} is not on this machine ({where}){detail}. Get it with: imagestudio models download "
        f"{spec.id} — or point models.{spec.id}.path in config.yaml at a downloaded folder",
        param="model",
        code="model_missing",
        details={"model": spec.id, "size": f"{size_gb:.1f}"},
    )
