"""Removing a model: the folders the app made for it, never a folder config.yaml points at."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imagestudio.errors import UserError
from imagestudio.models import cache
from imagestudio.models.locate import effective_repo
from imagestudio.models.state import folder_size
from imagestudio.models.units import human_bytes
from imagestudio.registry import get_model

if TYPE_CHECKING:
    from imagestudio.config import Settings


@dataclass(frozen=True)
class Removal:
    """What ``models remove`` deletes: folders the app made, never a folder from ``models.<id>.path``."""

    model_id: str
    paths: tuple[Path, ...]
    size_bytes: int

    def describe(self) -> str:
        where = ", ".join(str(p) for p in self.paths) or "nothing"
        return f"{self.model_id}: {human_bytes(self.size_bytes)} in {where}"


def plan_removal(settings: Settings, model_id: str, cache_dir: Path | None = None) -> Removal:
    """The folders removing ``model_id`` would delete (its models-dir folder, its hub cache repository)."""
    spec = get_model(model_id)
    configured = settings.model(spec.id).path
    if configured is not None:
        raise UserError(
            f"models.{spec.id}.path points at {configured}, a folder imagestudio did not download; delete it "
            f"yourself if you wish, and remove that line from config.yaml",
            param="model",
        )
    paths = []
    local = settings.models_dir / spec.id
    if local.exists():
        paths.append(local)
    repo = effective_repo(spec, settings)
    if repo is not None and not spec.tiny:
        storage = cache.repo_storage(repo, cache_dir)
        if storage.exists():
            paths.append(storage)
    # Blobs are the files; snapshot links would count them twice.
    size = sum(folder_size(p / "blobs") if p.name.startswith("models--") else folder_size(p) for p in paths)
    return Removal(spec.id, tuple(paths), size)


def remove_model(removal: Removal) -> None:
    """Delete what :func:`plan_removal` listed (and the hub cache's lock files for it)."""
    for path in removal.paths:
        shutil.rmtree(path)
        if path.name.startswith("models--"):
            with contextlib.suppress(OSError):
                shutil.rmtree(path.parent / ".locks" / path.name)
