"""Deterministic input pictures for the edit benchmarks."""

from __future__ import annotations

from pathlib import Path


def reference_picture(path: Path, side: int = 64, seed: int = 11) -> Path:
    """A smooth, seeded RGB picture (gradients plus noise) saved as PNG at ``path``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, side, dtype=np.float64)
    pixels = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.add.outer(ramp[::-1], ramp) / 2, np.full((side, side), 128.0)],
        axis=-1,
    )
    pixels = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGB").save(path)
    return path
