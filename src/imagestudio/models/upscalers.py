"""Upscaler weight files on disk: where one is, the tiny one built locally, and a download of a real one.

An upscaler is one ``.safetensors`` file. Search order:

1. ``<models_dir>/upscalers/<filename>`` (a copy put there by hand, or the built tiny one);
2. the Hugging Face cache's snapshot of the upscaler's repository (where :func:`download_upscaler` puts it,
   and where other tools find it).

The download uses the same pieces as a model's (disk check, resumable transfer checked against the hub's
SHA-256, progress, the cache layout) and also compares the file with the SHA-256 the registry publishes,
so a changed upstream file is refused rather than used.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ModelNotAvailable, UserError
from imagestudio.models import cache
from imagestudio.registry import UpscalerSpec, get_upscaler

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.models.progress import ProgressCallback

UPSCALERS_DIR = "upscalers"
#: The tiny upscaler: Real-ESRGAN's compact architecture (SRVGGNetCompact, as in realesr-general-x4v3)
#: at 8 features and 2 convolutions, x2 — a real spandrel architecture, loaded as a real file would be.
TINY_UPSCALER_CONFIG: dict[str, Any] = {
    "num_in_ch": 3,
    "num_out_ch": 3,
    "num_feat": 8,
    "num_conv": 2,
    "upscale": 2,
    "act_type": "prelu",
}
TINY_SEED = 20261207


def local_upscaler_path(spec: UpscalerSpec, settings: Settings) -> Path:
    return settings.models_dir / UPSCALERS_DIR / spec.filename


def find_upscaler_file(
    spec: UpscalerSpec, settings: Settings, *, build_tiny: bool = True, cache_dir: Path | None = None
) -> Path | None:
    """The upscaler's file when it is on this machine (the tiny one is built on first use)."""
    local = local_upscaler_path(spec, settings)
    if spec.tiny:
        if build_tiny:
            ensure_tiny_upscaler(local)
        return local if local.is_file() else None
    if local.is_file():
        return local
    if spec.repo_id is not None:
        snapshot = cache.cached_snapshot(spec.repo_id, None, cache_dir)
        if snapshot is not None and (snapshot / spec.filename).is_file():
            return snapshot / spec.filename
    return None


def require_upscaler_file(spec: UpscalerSpec, settings: Settings) -> Path:
    """The upscaler's file, or a one-line refusal naming its size and the command that fetches it."""
    path = find_upscaler_file(spec, settings)
    if path is None:
        raise ModelNotAvailable(
            f"upscaler {spec.id} is not on this machine ({spec.repo_id}, {spec.download_bytes / 1e6:.0f} MB, "
            f"{spec.license}). Get it with: imagestudio models download {spec.id} — or put "
            f"{spec.filename} into {local_upscaler_path(spec, settings).parent}",
            param="upscaler",
            code="upscaler_missing",
            details={"upscaler": spec.id},
        )
    return path


def import_spandrel() -> ModuleType:
    """spandrel, or one line saying how to get it.

    It is an extra, not a default dependency: spandrel needs torchvision, and a torchvision that does not
    match the installed torch build breaks every diffusers import — so it is installed on purpose, from the
    same place as torch, by those who upscale.
    """
    try:
        import spandrel
    except ImportError as exc:
        raise upscale_extra_missing(exc.name or "spandrel") from None
    return spandrel


def upscale_extra_missing(missing: str) -> ModelNotAvailable:
    """The one-line refusal of an upscale where the ``upscale`` extra is missing (``missing``: a module)."""
    return ModelNotAvailable(
        "upscaling needs spandrel and a torchvision matching your torch: "
        'pip install "imagestudio[upscale]" (install torchvision from the same index as torch)',
        param="upscaler",
        code="upscale_needs_extra",
        details={"extra": "upscale", "missing": missing},
    )


def missing_upscale_module() -> str | None:
    """The first module of the ``upscale`` extra this Python cannot find, without importing it (None: all
    there). A cheap look for a cluster worker describing itself; the job's own import stays the judge."""
    from importlib.util import find_spec

    for name in ("spandrel", "torchvision"):
        try:
            if find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def build_tiny_upscaler(dest: Path) -> Path:
    """Write the tiny upscaler's random weights to ``dest`` (the same bytes on every machine)."""
    from safetensors.torch import save_file

    from imagestudio.models.random_weights import redraw_portably

    import_spandrel()
    from spandrel.architectures.Compact import Compact

    network = Compact(**TINY_UPSCALER_CONFIG)
    redraw_portably(network, TINY_SEED)
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, dest)
    return dest


def ensure_tiny_upscaler(dest: Path) -> Path:
    """Build the tiny upscaler at ``dest`` unless it is there; written beside it and renamed into place."""
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.building"
    try:
        build_tiny_upscaler(staging)
        staging.replace(dest)
    finally:
        staging.unlink(missing_ok=True)
    return dest


def download_upscaler(
    settings: Settings,
    upscaler_id: str,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    disk_usage: Any = shutil.disk_usage,
) -> Path:
    """Fetch an upscaler's file into the hub cache (resumable, checked), or find it already there."""
    from imagestudio.models.hub_files import fetch_hub_files

    spec = get_upscaler(upscaler_id)
    if spec.repo_id is None:
        raise UserError(
            f"{spec.id} is built on this machine on first use; there is nothing to download",
            param="model",
            code="nothing_to_download",
            details={"model": spec.id},
        )
    existing = find_upscaler_file(spec, settings, cache_dir=cache_dir)
    try:
        folder = fetch_hub_files(
            settings,
            spec,
            spec.repo_id,
            (spec.filename,),
            expected={spec.filename: spec.sha256} if spec.sha256 is not None else None,
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
    return folder / spec.filename
