"""Upscaling: the tiny upscaler loaded by spandrel from its file, tiles blended without seams, its job."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.engine.upscale import load_upscaler, passes_for, tile_starts, upscale_image
from imagestudio.errors import InvalidRequest, JobCancelled
from imagestudio.memory.upscale import plan_upscale, tile_bytes
from imagestudio.models.upscalers import build_tiny_upscaler, ensure_tiny_upscaler


@pytest.fixture(scope="module")
def tiny_upscaler_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_upscaler(tmp_path_factory.mktemp("upscalers") / "tiny-upscaler.safetensors")


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    # Smooth content plus noise, so a seam (a jump between tiles) would stand out against neighbours.
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([np.sin(x / 7.0), np.cos(y / 5.0), np.sin((x + y) / 11.0)], axis=-1) * 100 + 128
    noisy = base + rng.normal(0, 10, base.shape)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8), "RGB")


def test_tiny_upscaler_is_a_real_spandrel_architecture(tiny_upscaler_file: Path) -> None:
    model = load_upscaler(tiny_upscaler_file, "cpu")
    assert model.architecture.name == "RealESRGAN Compact"
    assert model.scale == 2
    assert model.input_channels == 3


def test_tiny_upscaler_files_are_the_same_bytes_every_build(tmp_path: Path, tiny_upscaler_file: Path) -> None:
    again = build_tiny_upscaler(tmp_path / "again.safetensors")
    assert again.read_bytes() == tiny_upscaler_file.read_bytes()


def test_tile_starts_cover_every_pixel_with_the_overlap() -> None:
    for length, tile, overlap in ((100, 32, 8), (64, 64, 8), (65, 64, 8), (10, 64, 8), (1000, 256, 32)):
        starts = tile_starts(length, tile, overlap)
        covered = np.zeros(length, dtype=bool)
        for start in starts:
            covered[start : start + tile] = True
        assert covered.all()
        assert starts[-1] + min(tile, length) == length
        assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))


def test_tiled_result_matches_one_pass_and_shows_no_seams(tiny_upscaler_file: Path) -> None:
    model = load_upscaler(tiny_upscaler_file, "cpu")
    image = _photo(96, 80)
    whole = plan_upscale(free_bytes=None, scale=2, dtype_bytes=4, out_width=192, out_height=160, tile=128)
    tiled = plan_upscale(free_bytes=None, scale=2, dtype_bytes=4, out_width=192, out_height=160, tile=32)
    assert tiled.overlap == 8
    one = np.asarray(upscale_image(model, image, 2, whole, device="cpu"), dtype=np.float64)
    many = np.asarray(upscale_image(model, image, 2, tiled, device="cpu"), dtype=np.float64)
    assert one.shape == many.shape == (160, 192, 3)
    # The network's receptive field is a few pixels; only pixels near a tile's own border differ, and
    # those carry little weight in the blend.
    assert np.abs(one - many).mean() < 1.0
    # A seam would be a line where neighbouring output columns differ far more than elsewhere.
    column_steps = np.abs(np.diff(many, axis=1)).mean(axis=(0, 2))
    assert column_steps.max() < 3 * np.median(column_steps) + 5


def test_scales_the_network_lacks_take_more_passes_and_a_resize(tiny_upscaler_file: Path) -> None:
    model = load_upscaler(tiny_upscaler_file, "cpu")
    assert (
        passes_for(2, 1.5) == 1 and passes_for(2, 2) == 1 and passes_for(2, 3) == 2 and passes_for(4, 2) == 1
    )
    plan = plan_upscale(free_bytes=None, scale=2, dtype_bytes=4, out_width=0, out_height=0, tile=64)
    ticks: list[tuple[int, int]] = []
    result = upscale_image(
        model, _photo(40, 24), 3, plan, device="cpu", on_tile=lambda i, n: ticks.append((i, n))
    )
    assert result.size == (120, 72)
    # two passes: 40x24 (one tile) then 80x48 (two tiles across)
    assert ticks == [(1, 3), (2, 3), (3, 3)]


def test_cancel_stops_between_tiles(tiny_upscaler_file: Path) -> None:
    model = load_upscaler(tiny_upscaler_file, "cpu")
    plan = plan_upscale(free_bytes=None, scale=2, dtype_bytes=4, out_width=0, out_height=0, tile=32)
    cancel = threading.Event()
    seen: list[int] = []

    def on_tile(done: int, total: int) -> None:
        seen.append(done)
        cancel.set()

    with pytest.raises(JobCancelled):
        upscale_image(model, _photo(96, 96), 2, plan, device="cpu", on_tile=on_tile, cancel=cancel)
    assert seen == [1]


def test_files_spandrel_cannot_use_are_one_line(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    pickle = tmp_path / "model.pth"
    pickle.write_bytes(b"not read")
    with pytest.raises(InvalidRequest, match=r"not \.safetensors"):
        load_upscaler(pickle, "cpu")
    unknown = tmp_path / "unknown.safetensors"
    save_file({"some.weight": torch.zeros(3, 3)}, unknown)
    with pytest.raises(InvalidRequest, match="no architecture spandrel knows"):
        load_upscaler(unknown, "cpu")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(InvalidRequest, match="cannot be read"):
        load_upscaler(broken, "cpu")


def test_tile_plan_follows_free_memory() -> None:
    big = plan_upscale(free_bytes=24 * 2**30, scale=4, dtype_bytes=2, out_width=4096, out_height=4096)
    small = plan_upscale(free_bytes=1 * 2**30, scale=4, dtype_bytes=2, out_width=4096, out_height=4096)
    assert big.tile > small.tile
    assert small.tile_bytes <= 2**30 // 2
    assert tile_bytes(big.tile, 4, 2) == big.tile_bytes


# ------------------------------------------------------------------------------------ the job path


def _input(image: Image.Image, name: str = "photo.png"):
    import io

    from imagestudio.storage.inputs import InputLimits, read_input_image

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return read_input_image(
        buffer.getvalue(), InputLimits(max_bytes=10_000_000, max_pixels=10_000_000), name=name
    )


def test_studio_upscale_writes_the_picture_with_what_made_it(studio, tmp_path: Path) -> None:
    from imagestudio.job_requests import build_upscale_request
    from imagestudio.storage.metadata import read_metadata, read_parameters

    source = _input(_photo(48, 32))
    request = build_upscale_request(
        studio.settings, source, upscaler="tiny-upscaler", scale=2, prompt="a fox"
    )
    steps: list[tuple[int, int]] = []
    result = studio.upscale(request, tmp_path, on_step=lambda p: steps.append((p.step, p.steps)))
    [saved] = result.images
    with Image.open(saved.path) as image:
        assert image.size == (96, 64)
    meta = read_metadata(saved.path)
    assert meta["upscaler"] == "tiny-upscaler"
    assert meta["upscaler_architecture"] == "RealESRGAN Compact"
    assert meta["upscale_by"] == 2
    assert meta["input_images"][0]["sha256"] == source.sha256
    text = read_parameters(saved.path)
    assert text is not None
    assert text.splitlines()[0] == "a fox"
    assert "Postprocess upscale by: 2, Postprocess upscaler: Tiny upscaler" in text
    assert steps and steps[-1][0] == steps[-1][1]


def test_a_scale_past_the_pixel_limit_is_refused_before_anything_loads(settings) -> None:
    from imagestudio.job_requests import build_upscale_request

    limited = settings.model_copy(
        update={"upscale": settings.upscale.model_copy(update={"max_output_pixels": 100 * 100})}
    )
    with pytest.raises(InvalidRequest, match=r"at most 10,000 .* use a scale of at most 2\.5"):
        build_upscale_request(limited, _input(_photo(40, 40)), upscaler="tiny-upscaler", scale=4)
    with pytest.raises(InvalidRequest, match="unknown upscaler 'nope'"):
        build_upscale_request(settings, _input(_photo(8, 8)), upscaler="nope")
    with pytest.raises(InvalidRequest, match="scale"):
        build_upscale_request(settings, _input(_photo(8, 8)), upscaler="tiny-upscaler", scale=9)


def test_a_missing_real_upscaler_names_its_download(studio) -> None:
    from imagestudio.errors import ModelNotAvailable
    from imagestudio.job_requests import build_upscale_request

    request = build_upscale_request(studio.settings, _input(_photo(8, 8)))
    assert request.upscaler == "realesrgan-x4plus"
    with pytest.raises(ModelNotAvailable, match="imagestudio models download realesrgan-x4plus"):
        studio.upscale(request)


def test_without_the_upscale_extra_upscaling_is_one_line_naming_it(
    tiny_upscaler_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """spandrel is an extra (it needs a torchvision matching torch): without it, one line names it."""
    import sys

    from imagestudio.errors import ModelNotAvailable

    for name in [m for m in sys.modules if m == "spandrel" or m.startswith("spandrel.")]:
        monkeypatch.delitem(sys.modules, name)
    # A None entry makes the import fail as it does where the package is not installed.
    monkeypatch.setitem(sys.modules, "spandrel", None)
    with pytest.raises(ModelNotAvailable, match=r'pip install "imagestudio\[upscale\]"') as caught:
        load_upscaler(tiny_upscaler_file, "cpu")
    assert "\n" not in str(caught.value)
