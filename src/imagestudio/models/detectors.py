"""Control-map detectors on disk: the tiny random-weight one built from the real class, and a real one.

A detector is a transformers ``save_pretrained`` folder. Search order: ``<models_dir>/detectors/<id>/``
(a copy put there by hand, or the built tiny one), then the hub cache's snapshot of its repository (where
:func:`download_detector` puts it). The tiny depth detector is transformers' Depth Anything (a DINOv2
backbone, the DPT neck and head) at a few thousand parameters with random weights: it runs through the
same ``depth-estimation`` pipeline as the real one, and its maps are noise.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ModelNotAvailable, UserError
from imagestudio.models import cache
from imagestudio.registry import DETECTORS, DetectorSpec

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.models.progress import ProgressCallback

DETECTORS_DIR = "detectors"
TINY_SEED = 20261209
#: Depth Anything V2's input normalisation (ImageNet's), as its preprocessor config has it.
_IMAGENET_MEAN, _IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def build_tiny_detector(dest: Path) -> Path:
    """Write the tiny depth detector (model and preprocessor, the same bytes on every machine) to ``dest``."""
    import torch
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    # Dinov2Config takes these through its ``**kwargs`` (transformers' stubs do not list them).
    backbone = Dinov2Config(  # type: ignore[call-arg]
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, patch_size=14,
        image_size=56, out_features=["stage1", "stage2"], reshape_hidden_states=False,
    )  # fmt: skip
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 16],
        reassemble_factors=[2, 1], fusion_hidden_size=8, head_hidden_size=8, depth_estimation_type="relative",
    )  # fmt: skip
    torch.manual_seed(TINY_SEED)
    model = DepthAnythingForDepthEstimation(config)
    model.save_pretrained(dest, safe_serialization=True)
    processor = DPTImageProcessor(
        do_resize=True, size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
        do_normalize=True, image_mean=_IMAGENET_MEAN, image_std=_IMAGENET_STD,
    )  # fmt: skip
    processor.save_pretrained(dest)
    return dest


def _complete(folder: Path, spec: DetectorSpec) -> bool:
    return all((folder / name).is_file() for name in spec.files)


def ensure_tiny_detector(dest: Path, spec: DetectorSpec) -> Path:
    """Build the tiny detector at ``dest`` unless it is complete there; built beside it, renamed in."""
    if _complete(dest, spec):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.building"
    try:
        build_tiny_detector(staging)
        try:
            staging.rename(dest)
        except OSError:
            if not _complete(dest, spec):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def find_detector(
    spec: DetectorSpec, settings: Settings, *, build_tiny: bool = True, cache_dir: Path | None = None
) -> Path | None:
    """The detector's folder when it is on this machine (the tiny one is built on first use)."""
    local = settings.models_dir / DETECTORS_DIR / spec.id
    if spec.tiny:
        return (
            ensure_tiny_detector(local, spec) if build_tiny else (local if _complete(local, spec) else None)
        )
    if _complete(local, spec):
        return local
    if spec.repo_id is not None:
        snapshot = cache.cached_snapshot(spec.repo_id, None, cache_dir)
        if snapshot is not None and _complete(snapshot, spec):
            return snapshot
    return None


def require_detector(spec: DetectorSpec, settings: Settings) -> Path:
    """The detector's folder, or a one-line refusal naming its size and the command that fetches it."""
    path = find_detector(spec, settings)
    if path is None:
        raise ModelNotAvailable(
            f"the {spec.control_type} detector {spec.id} is not on this machine ({spec.repo_id}, "
            f"{spec.download_bytes / 1e6:.0f} MB, {spec.license}). Get it with: imagestudio models download "
            f"{spec.id}",
            param="control.type",
            code="detector_missing",
            details={"detector": spec.id},
        )
    return path


def download_detector(
    settings: Settings,
    detector_id: str,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    disk_usage: Any = shutil.disk_usage,
) -> Path:
    """Fetch a detector's files into the hub cache (resumable, checked), or find them already there."""
    from imagestudio.models.hub_files import fetch_hub_files

    spec = DETECTORS[detector_id]
    if spec.repo_id is None:
        raise UserError(
            f"{spec.id} is built on this machine on first use; there is nothing to download",
            param="model",
            code="nothing_to_download",
            details={"model": spec.id},
        )
    existing = find_detector(spec, settings, cache_dir=cache_dir)
    try:
        return fetch_hub_files(
            settings,
            spec,
            spec.repo_id,
            spec.files,
            on_progress=on_progress,
            cancel=cancel,
            endpoint=endpoint,
            cache_dir=cache_dir,
            disk_usage=disk_usage,
        )
    except ModelNotAvailable:
        if existing is not None:
            return existing
        raise
