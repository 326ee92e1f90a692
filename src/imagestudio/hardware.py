"""What machine this is. Every probe is a function call; nothing runs at import."""

from __future__ import annotations

from imagestudio.errors import ConfigError


def resolve_device(kind: str) -> str:
    """Turn ``device.type`` into a torch device string; ``auto`` prefers CUDA, then MPS, then CPU."""
    import torch

    if kind == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device.type is cuda but this torch has no CUDA device (a CPU build of torch, or no NVIDIA "
            "driver); install the CUDA build of torch (see README) or set device.type: auto",
            param="device.type",
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device.type is mps but Apple MPS is not available here", param="device.type")
    return kind
