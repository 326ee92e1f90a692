"""PyTorch's CUDA allocator setting, decided once for every command that may load a model."""

from __future__ import annotations

import sys
from collections.abc import MutableMapping

EXPANDABLE_SEGMENTS = "expandable_segments:True"


def use_expandable_segments(environ: MutableMapping[str, str], platform: str | None = None) -> None:
    """Ask PyTorch's CUDA allocator for expandable segments unless the user configured it.

    Must run before torch is imported (the allocator reads it once). It keeps memory from fragmenting
    over long sessions of differently sized images, a common cause of out-of-memory on 8-16 GB cards.
    Windows builds of torch do not support it, so it is only set elsewhere (start_app.bat sets it as the
    original documents did; torch ignores it there with a warning). A user's ``PYTORCH_ALLOC_CONF`` (the
    newer, device-generic name) is their choice too: adding the CUDA one beside it would override it.
    ``platform`` is ``sys.platform`` unless given.
    """
    if (platform or sys.platform) == "win32" or environ.get("PYTORCH_ALLOC_CONF"):
        return
    environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", EXPANDABLE_SEGMENTS)
