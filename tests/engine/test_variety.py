"""Seed variety on the tiny Z-Image pipeline: off keeps the pixels, on changes them reproducibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.errors import InvalidRequest
from imagestudio.job_requests import GenerateRequest
from imagestudio.storage.metadata import read_metadata


def tiny_request(**fields: object) -> GenerateRequest:
    base = {"model": "tiny-z-image", "prompt": "кот в шляпе", "width": 64, "height": 48, "steps": 2}
    base["seed"] = 7
    return GenerateRequest.build(**{**base, **fields})


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def test_variety_off_is_the_plain_pipeline_call(studio, tmp_path: Path) -> None:
    """Variety 0 gives exactly the pixels of a request without the field, and no metadata key."""
    plain = studio.generate(tiny_request(), out_dir=tmp_path).images[0]
    off = studio.generate(tiny_request(variety=0.0), out_dir=tmp_path).images[0]
    assert np.array_equal(pixels(plain.path), pixels(off.path))
    assert "variety" not in read_metadata(off.path)


def test_variety_changes_pixels_reproducibly(studio, tmp_path: Path) -> None:
    off = pixels(studio.generate(tiny_request(), out_dir=tmp_path).images[0].path)
    first = studio.generate(tiny_request(variety=0.5), out_dir=tmp_path).images[0]
    again = studio.generate(tiny_request(variety=0.5), out_dir=tmp_path).images[0]
    assert np.array_equal(pixels(first.path), pixels(again.path))
    assert not np.array_equal(pixels(first.path), off)
    assert read_metadata(first.path)["variety"] == 0.5


def test_variety_noise_follows_the_seed(studio, tmp_path: Path) -> None:
    """Two seeds of one job get different embedding noise: their difference grows with variety."""
    plain = studio.generate(tiny_request(count=2), out_dir=tmp_path).images
    varied = studio.generate(tiny_request(count=2, variety=1.0), out_dir=tmp_path).images
    assert [image.seed for image in varied] == [7, 8]
    # Same seeds, other conditioning: each image changed, and the pair is not the same picture.
    for before, after in zip(plain, varied, strict=True):
        assert not np.array_equal(pixels(before.path), pixels(after.path))
    assert not np.array_equal(pixels(varied[0].path), pixels(varied[1].path))


def test_perturbation_is_seeded_and_scaled() -> None:
    import torch

    from imagestudio.engine.variety import perturbed

    embeds = [torch.randn(5, 8, generator=torch.Generator().manual_seed(0)) * 3]
    a, b, c = perturbed(embeds, 0.5, 1), perturbed(embeds, 0.5, 1), perturbed(embeds, 0.5, 2)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    # The noise is about variety x std of the embeddings.
    ratio = float((a[0] - embeds[0]).std() / embeds[0].std())
    assert 0.3 < ratio < 0.7
    assert torch.equal(perturbed(embeds, 0.0, 1)[0], embeds[0])


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_variety_out_of_range_is_one_line(value: float) -> None:
    with pytest.raises(InvalidRequest) as info:
        tiny_request(variety=value)
    assert info.value.param == "variety"
