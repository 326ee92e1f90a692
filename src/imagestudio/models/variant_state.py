"""Verifying and removing one weight variant (``models verify|remove MODEL --weights VARIANT``).

``bf16`` is the model itself (:mod:`.state`, :mod:`.removal`). A GGUF variant is its ``.gguf`` file plus
the base model's folder without transformer weights; an SDNQ variant is its own pipeline folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from imagestudio.errors import ModelNotAvailable, UserError
from imagestudio.models import cache
from imagestudio.models.removal import Removal
from imagestudio.models.state import folder_size
from imagestudio.models.variants import variant_dir, variant_files
from imagestudio.models.verify import VerifyReport, verify_model_dir, verify_single_files
from imagestudio.registry import get_model

if TYPE_CHECKING:
    from imagestudio.config import Settings


def verify_variant(settings: Settings, model_id: str, weights: str) -> VerifyReport:
    """Every file ``weights`` of ``model_id`` loads is there and whole (headers only; no tensor read)."""
    spec = get_model(model_id)
    variant = spec.variant(weights)
    files = variant_files(spec, variant, settings)
    if files is None:
        raise ModelNotAvailable(
            f"{spec.id} {variant.name} is not on this machine; get it with: imagestudio models download "
            f"{spec.id} --weights {variant.name}",
            param="weights",
            code="variant_missing",
            details={"model": spec.id, "weights": variant.name},
        )
    if files.gguf_file is None:
        return verify_model_dir(files.pipeline_dir)
    base = verify_model_dir(files.pipeline_dir, skip_weights=("transformer",))
    gguf = verify_single_files(files.gguf_file.parent, [files.gguf_file.name])
    return VerifyReport(
        files.gguf_file,
        base.problems + gguf.problems,
        base.components,
        base.weights_files + gguf.weights_files,
        base.weights_bytes + gguf.weights_bytes,
    )


def plan_variant_removal(
    settings: Settings, model_id: str, weights: str, cache_dir: Path | None = None
) -> Removal:
    """What removing a quantized variant deletes: its repository in the hub cache and its models-dir
    folder (never the base model a GGUF variant shares, never a path config.yaml names)."""
    spec = get_model(model_id)
    variant = spec.variant(weights)
    if not variant.quantized:
        raise UserError(
            f"{variant.name} is the model itself: run imagestudio models remove {spec.id}", param="weights"
        )
    configured = settings.model(spec.id).weights_paths.get(variant.name)
    if configured is not None:
        raise UserError(
            f"models.{spec.id}.weights_paths.{variant.name} points at {configured}, which imagestudio did "
            "not download; delete it yourself if you wish, and remove that line from config.yaml",
            param="weights",
        )
    paths = [p for p in (variant_dir(spec, variant, settings),) if p.exists()]
    if variant.repo_id is not None:
        storage = cache.repo_storage(variant.repo_id, cache_dir)
        if storage.exists():
            paths.append(storage)
    size = sum(folder_size(p / "blobs") if p.name.startswith("models--") else folder_size(p) for p in paths)
    return Removal(f"{spec.id} {variant.name}", tuple(paths), size)
