"""The picture a tool result carries: the file itself when it fits the budget, else a downscaled PNG that
does."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

from imagestudio.mcp_server.results import b64_size, shown_png


def noise_png(path: Path, width: int, height: int) -> Path:
    # Noise barely compresses: the worst case for the budget, like the tiny models' output.
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_a_picture_within_the_budget_is_the_file_itself(tmp_path: Path) -> None:
    path = noise_png(tmp_path / "small.png", 32, 32)
    shown = shown_png(path, budget_chars=100_000)
    assert not shown.downscaled and shown.png == path.read_bytes() and (shown.width, shown.height) == (32, 32)


def test_a_larger_picture_is_downscaled_to_fit_keeping_its_aspect(tmp_path: Path) -> None:
    path = noise_png(tmp_path / "big.png", 512, 256)
    budget = 60_000
    assert b64_size(path.read_bytes()) > budget
    shown = shown_png(path, budget_chars=budget)
    assert shown.downscaled and len(base64.b64encode(shown.png)) <= budget
    decoded = Image.open(io.BytesIO(shown.png))
    assert decoded.format == "PNG" and decoded.size == (shown.width, shown.height)
    assert shown.width < 512 and abs(shown.width / shown.height - 2) < 0.05
