"""Text-to-image end to end on the tiny Z-Image pipeline, through the studio service."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.engine.pipeline_calls import StepProgress
from imagestudio.errors import BadOutput, JobCancelled
from imagestudio.job_requests import GenerateRequest
from imagestudio.storage.metadata import read_metadata


def tiny_request(**fields: object) -> GenerateRequest:
    base = {
        "model": "tiny-z-image",
        "prompt": "кот в шляпе",
        "width": 64,
        "height": 48,
        "steps": 2,
        "seed": 7,
    }
    return GenerateRequest.build(**{**base, **fields})


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_generate_writes_png_with_metadata(studio, out: Path) -> None:
    result = studio.generate(tiny_request(), out_dir=out)
    [saved] = result.images
    assert saved.path.parent == out
    assert saved.path.suffix == ".png"
    with Image.open(saved.path) as image:
        assert image.size == (64, 48)
    meta = read_metadata(saved.path)
    assert meta["prompt"] == "кот в шляпе"
    assert (meta["seed"], meta["width"], meta["height"], meta["steps"]) == (7, 64, 48, 2)
    assert meta["guidance_scale"] == 0.0
    assert meta["model"] == "tiny-z-image"
    assert meta["dtype"] == "bfloat16"
    assert meta["elapsed_s"] > 0
    assert result.as_json()["images"][0] == {"path": str(saved.path), "seed": 7, "width": 64, "height": 48}


def test_same_seed_same_pixels_other_seed_other_pixels(studio, out: Path) -> None:
    first = studio.generate(tiny_request(), out_dir=out).images[0].path
    again = studio.generate(tiny_request(), out_dir=out).images[0].path
    other = studio.generate(tiny_request(seed=8), out_dir=out).images[0].path
    assert first != again
    assert np.array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other))


def test_count_uses_consecutive_seeds_each_reproducible(studio, out: Path) -> None:
    batch = studio.generate(tiny_request(count=2, seed=10), out_dir=out).images
    assert [img.seed for img in batch] == [10, 11]
    single = studio.generate(tiny_request(seed=11), out_dir=out).images[0]
    assert np.array_equal(pixels(batch[1].path), pixels(single.path))


def test_progress_reports_every_step(studio, out: Path) -> None:
    seen: list[StepProgress] = []
    studio.generate(tiny_request(count=2, steps=3), out_dir=out, on_step=seen.append)
    assert [(s.image, s.step) for s in seen] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert {s.steps for s in seen} == {3}
    assert seen[-1].fraction == 1.0


def test_cancel_discards_the_image(studio, out: Path) -> None:
    cancel = threading.Event()
    with pytest.raises(JobCancelled):
        studio.generate(tiny_request(steps=4), out_dir=out, on_step=lambda _: cancel.set(), cancel=cancel)
    assert not out.exists() or list(out.iterdir()) == []


def test_nan_output_is_an_error_not_a_file(studio, out: Path) -> None:
    import torch

    with studio.manager.acquire("tiny-z-image") as loaded, torch.no_grad():
        next(loaded.pipe.transformer.parameters()).fill_(float("nan"))
    with pytest.raises(BadOutput, match="NaN"):
        studio.generate(tiny_request(), out_dir=out)
    assert not out.exists() or list(out.iterdir()) == []


def test_black_output_is_an_error(studio, out: Path) -> None:
    import torch

    with studio.manager.acquire("tiny-z-image") as loaded, torch.no_grad():
        # A decoder whose last layer outputs a large negative constant decodes to pure black.
        conv = loaded.pipe.vae.decoder.conv_out
        conv.weight.zero_()
        conv.bias.fill_(-5.0)
    with pytest.raises(BadOutput, match="all-black"):
        studio.generate(tiny_request(), out_dir=out)
