"""ControlNet weights on disk: the tiny random-weight one built from the real class, and a real release.

The tiny ControlNet has the layout of alibaba-pai's Union 2.1 (control blocks on the transformer's layers
and on its noise refiner, 33 control channels: 16 of the control map's latents, then the inpaint mode's
mask and masked picture) at the tiny Z-Image's size, so the text-to-image and the inpaint ControlNet
pipelines both run with it. A real release is one ``.safetensors`` file in ``<models_dir>/controlnets/``
or the hub cache, loaded with diffusers' ``from_single_file``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ModelNotAvailable
from imagestudio.models import cache
from imagestudio.registry import ControlNetSpec

if TYPE_CHECKING:
    from imagestudio.config import Settings

CONTROLNETS_DIR = "controlnets"
CONFIG_FILE = "config.json"
TINY_SEED = 20261208

#: Union 2.1's layout at the tiny Z-Image's size (dim 32, 2 layers, 1 refiner layer, 2 heads).
TINY_CONTROLNET_CONFIG: dict[str, Any] = {
    "_class_name": "ZImageControlNetModel",
    "control_layers_places": [0, 1],
    "control_refiner_layers_places": [0],
    "control_in_dim": 33,
    "add_control_noise_refiner": "control_noise_refiner",
    "all_patch_size": [2],
    "all_f_patch_size": [1],
    "dim": 32,
    "n_refiner_layers": 1,
    "n_heads": 2,
    "n_kv_heads": 2,
    "norm_eps": 1e-5,
    "qk_norm": True,
}


def build_tiny_controlnet(dest: Path) -> Path:
    """Write the tiny ControlNet (``save_pretrained`` layout, the same bytes on every machine) to ``dest``."""
    import torch

    from imagestudio.models.random_weights import build_component, redraw_portably

    torch.manual_seed(TINY_SEED)
    model: Any = build_component(
        "z-image", "controlnet", TINY_CONTROLNET_CONFIG, device="cpu", dtype=torch.float32
    )
    # Every path live (the real class zero-initialises its output projections, which would hide a
    # control image that never reaches the transformer).
    redraw_portably(model, TINY_SEED)
    model.save_pretrained(dest, safe_serialization=True)
    return dest


def ensure_tiny_controlnet(dest: Path) -> Path:
    """Build the tiny ControlNet at ``dest`` unless it is complete there; built beside it, renamed in."""
    if (dest / CONFIG_FILE).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.building"
    try:
        build_tiny_controlnet(staging)
        try:
            staging.rename(dest)
        except OSError:
            if not (dest / CONFIG_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def find_controlnet(spec: ControlNetSpec, settings: Settings) -> Path | None:
    """The tiny ControlNet's folder (built on first use), or a real release's file when it is here."""
    local = settings.models_dir / CONTROLNETS_DIR
    if spec.tiny:
        return ensure_tiny_controlnet(local / spec.id)
    assert spec.filename is not None and spec.repo_id is not None
    if (local / spec.filename).is_file():
        return local / spec.filename
    snapshot = cache.cached_snapshot(spec.repo_id)
    if snapshot is not None and (snapshot / spec.filename).is_file():
        return snapshot / spec.filename
    return None


def require_controlnet(spec: ControlNetSpec, settings: Settings) -> Path:
    path = find_controlnet(spec, settings)
    if path is None:
        raise ModelNotAvailable(
            f"the ControlNet {spec.id} is not on this machine ({spec.repo_id}, about "
            f"{spec.download_bytes / 1e9:.1f} GB): put {spec.filename} into "
            f"{settings.models_dir / CONTROLNETS_DIR}",
            param="control",
            code="controlnet_missing",
            details={"model": spec.id},
        )
    return path


def load_controlnet(path: Path, dtype: Any) -> Any:
    """The ControlNet in ``path``: a ``save_pretrained`` folder, or a release's single file."""
    import diffusers

    cls: Any = diffusers.ZImageControlNetModel
    if path.is_dir():
        return cls.from_pretrained(path, torch_dtype=dtype)
    return cls.from_single_file(path, torch_dtype=dtype)
