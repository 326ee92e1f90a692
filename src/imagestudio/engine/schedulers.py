"""Running one job with a scheduler other than the loaded pipeline's own.

Distilled LoRAs (Qwen-Image-Edit's Lightning) were trained on a different noise schedule than the base
model's. The loaded pipeline stays resident between jobs, so the schedule is swapped for the job and the
original scheduler put back afterwards: the next job without the LoRA samples exactly as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any


@contextlib.contextmanager
def scheduler_overrides(pipe: Any, overrides: Mapping[str, Any]) -> Iterator[None]:
    """Run with ``pipe.scheduler`` rebuilt from its own config with ``overrides``; restore it after.

    The new scheduler is of the same class and keeps every setting not overridden (training timesteps,
    sequence-length bounds), as diffusers' ``from_config`` does.
    """
    if not overrides:
        yield
        return
    original = pipe.scheduler
    pipe.scheduler = type(original).from_config(original.config, **dict(overrides))
    try:
        yield
    finally:
        pipe.scheduler = original
