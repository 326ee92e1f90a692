"""The hires pass on the tiny models: first pass → tiny upscaler → img2img, tiles blended past the limit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagestudio.engine.hires import refine_tiled
from imagestudio.errors import InvalidRequest
from imagestudio.job_requests import GenerateRequest


def _gradient(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=-1)
    return Image.fromarray(array.astype(np.uint8), "RGB")


def _input(image: Image.Image):
    import io

    from imagestudio.storage.inputs import InputLimits, read_input_image

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    limits = InputLimits(max_bytes=10**7, max_pixels=10**7)
    return read_input_image(buffer.getvalue(), limits, name="start.png")


def test_tiles_that_change_nothing_give_back_the_picture() -> None:
    image = _gradient(200, 136)
    assert np.array_equal(np.asarray(refine_tiled(image, 64, lambda piece: piece)), np.asarray(image))


def test_neighbouring_tiles_are_cross_faded_not_cut() -> None:
    pieces = iter([0, 200, 0, 200])

    def solid(piece: Image.Image) -> Image.Image:
        return Image.new("RGB", piece.size, (next(pieces),) * 3)

    # 112 wide in tiles of 64: starts 0 and 48, overlapping over columns 48..63
    out = np.asarray(refine_tiled(_gradient(112, 64), 64, solid, overlap=16))[0, :, 0].astype(int)
    assert (out[:48] == 0).all() and (out[64:] == 200).all()
    ramp = out[48:64]
    assert (np.diff(ramp) > 0).all(), ramp  # a gradual cross-fade across the overlap, no step


def test_hires_generation_upscales_reworks_and_records(studio, tmp_path) -> None:
    from imagestudio.storage.metadata import read_metadata, read_parameters

    request = GenerateRequest.build(
        model="tiny-z-image", prompt="a fox", width=64, height=48, steps=2, seed=3,
        hires_scale=2, hires_upscaler="tiny-upscaler", hires_steps=4, hires_strength=0.5,
    )  # fmt: skip
    plain = GenerateRequest.build(model="tiny-z-image", prompt="a fox", width=64, height=48, steps=2, seed=3)
    [first] = studio.generate(plain, tmp_path).images
    [saved] = studio.generate(request, tmp_path).images
    with Image.open(saved.path) as image:
        assert image.size == (128, 96)
        with Image.open(first.path) as small:
            # the second pass starts from the enlarged first pass; it is not a fresh picture
            upscaled_first = np.asarray(small.resize((128, 96)), dtype=float)
            assert np.abs(np.asarray(image, dtype=float) - upscaled_first).mean() < 100
    meta = read_metadata(saved.path)
    assert (meta["hires_scale"], meta["hires_upscaler"], meta["hires_steps"]) == (2, "tiny-upscaler", 4)
    assert meta["first_pass_width"] == 64 and meta["hires_tiled"] is False
    text = read_parameters(saved.path) or ""
    assert "Size: 64x48" in text
    assert "Denoising strength: 0.5, Hires upscale: 2, Hires steps: 4, Hires upscaler: Tiny upscaler" in text
    assert "hires_scale" not in read_metadata(first.path)


def test_tiled_img2img_runs_the_real_pipeline_per_tile(studio) -> None:
    import diffusers

    from imagestudio.engine.pipeline_calls import derived_pipeline, run_pipeline

    calls: list[tuple[int, int]] = []
    with studio.manager.acquire("tiny-z-image") as loaded:
        img2img = derived_pipeline(diffusers.ZImageImg2ImgPipeline, loaded.pipe)

        def rework(piece: Image.Image) -> Image.Image:
            calls.append(piece.size)
            kwargs = {"prompt": "fox", "width": piece.width, "height": piece.height, "guidance_scale": 0.0}
            kwargs.update(image=piece, strength=0.5)
            [done] = run_pipeline(img2img, kwargs, [1], steps=2, dtype=loaded.dtype)
            return done.image

        out = refine_tiled(_gradient(96, 80), 64, rework)
    assert out.size == (96, 80)
    assert calls == [(64, 64)] * 4


def test_hires_options_are_checked_before_anything_loads(settings) -> None:
    base = {"model": "tiny-z-image", "prompt": "fox", "width": 64, "height": 64}
    with pytest.raises(InvalidRequest, match="hires_strength needs a hires pass"):
        GenerateRequest.build(**base, hires_strength=0.3).resolved(settings)
    with pytest.raises(InvalidRequest, match="unknown upscaler"):
        GenerateRequest.build(**base, hires_scale=2, hires_upscaler="nope").resolved(settings)
    with pytest.raises(InvalidRequest, match="hires pass follows text-to-image"):
        GenerateRequest.build(**base, hires_scale=2, init_image=_input(_gradient(64, 64))).resolved(settings)
    limited = settings.model_copy(
        update={"upscale": settings.upscale.model_copy(update={"max_output_pixels": 100 * 100})}
    )
    with pytest.raises(InvalidRequest, match="hires 2 makes 64x64 into 128x128"):
        GenerateRequest.build(**base, hires_scale=2).resolved(limited)
    resolved = GenerateRequest.build(**base, hires_scale=1.5).resolved(settings)
    assert resolved.hires_upscaler == "realesrgan-x4plus" and resolved.hires_strength == 0.35
    assert resolved.hires_size() == (96, 96)
