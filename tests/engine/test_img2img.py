"""img2img and inpaint on the tiny Z-Image pipeline, sharing the text-to-image pipeline's weights."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.engine.pipeline_calls import StepProgress, derived_pipeline
from imagestudio.job_requests import GenerateRequest
from imagestudio.storage.inputs import InputImage, InputLimits, read_input_image
from imagestudio.storage.metadata import read_metadata

LIMITS = InputLimits(max_bytes=10_000_000, max_pixels=10_000_000)


def as_input(image: Image.Image, name: str, purpose: str = "image") -> InputImage:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return read_input_image(buffer.getvalue(), LIMITS, name=name, purpose=purpose)  # type: ignore[arg-type]


def init_picture(width: int = 64, height: int = 48) -> InputImage:
    array = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return as_input(Image.fromarray(array), "init.png")


def mask_picture(left: int, right: int, width: int = 64, height: int = 48) -> InputImage:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (left, 0, right, height))
    return as_input(mask, "mask.png", "mask")


def request(**fields: object) -> GenerateRequest:
    base = {"model": "tiny-z-image", "prompt": "a cat", "init_image": init_picture(), "steps": 4, "seed": 5}
    return GenerateRequest.build(**{**base, **fields})


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def test_derived_pipelines_share_every_weight_and_keep_the_dtype(studio) -> None:
    import diffusers
    import torch

    with studio.manager.acquire("tiny-z-image") as loaded:
        pipe = loaded.pipe
        for name in ("ZImageImg2ImgPipeline", "ZImageInpaintPipeline"):
            derived = derived_pipeline(getattr(diffusers, name), pipe)
            for component in ("transformer", "vae", "text_encoder", "tokenizer"):
                assert getattr(derived, component) is getattr(pipe, component), (name, component)
            assert derived.scheduler is not pipe.scheduler
            assert derived.scheduler.config == pipe.scheduler.config
        assert pipe.transformer.dtype == torch.bfloat16  # from_pipe() would have cast it to float32


def test_img2img_writes_png_reproducibly_and_strength_matters(studio, out: Path) -> None:
    first = studio.generate(request(), out_dir=out).images[0]
    again = studio.generate(request(), out_dir=out).images[0]
    stronger = studio.generate(request(strength=0.9), out_dir=out).images[0]
    assert (first.width, first.height) == (64, 48)  # the init image's size
    assert np.array_equal(pixels(first.path), pixels(again.path))
    assert not np.array_equal(pixels(first.path), pixels(stronger.path))
    meta = read_metadata(first.path)
    assert (meta["mode"], meta["strength"], meta["steps"], meta["denoising_steps"]) == ("img2img", 0.6, 4, 3)
    assert meta["init_image"]["name"] == "init.png"


def test_the_init_image_matters(studio, out: Path) -> None:
    base = pixels(studio.generate(request(), out_dir=out).images[0].path)
    flipped = init_picture().image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    other = pixels(
        studio.generate(request(init_image=as_input(flipped, "f.png")), out_dir=out).images[0].path
    )
    assert not np.array_equal(base, other)


def test_progress_counts_the_steps_that_run(studio, out: Path) -> None:
    seen: list[StepProgress] = []
    studio.generate(request(steps=8, strength=0.6), out_dir=out, on_step=seen.append)
    assert [(s.step, s.steps) for s in seen] == [(i, 5) for i in range(1, 6)]  # 8 - int(8 x 0.4)
    assert seen[-1].fraction == 1.0


def test_init_image_is_resized_to_the_requested_size(studio, out: Path) -> None:
    [saved] = studio.generate(
        request(init_image=init_picture(96, 72), width=64, height=48), out_dir=out
    ).images
    with Image.open(saved.path) as image:
        assert image.size == (64, 48)


def test_text_to_image_is_unchanged_after_img2img(studio, out: Path) -> None:
    plain = {"model": "tiny-z-image", "prompt": "a cat", "width": 64, "height": 48, "steps": 2, "seed": 5}
    before = pixels(studio.generate(GenerateRequest.build(**plain), out_dir=out).images[0].path)
    studio.generate(request(mask=mask_picture(0, 32)), out_dir=out)
    studio.generate(request(), out_dir=out)
    after = pixels(studio.generate(GenerateRequest.build(**plain), out_dir=out).images[0].path)
    assert np.array_equal(before, after)


def test_inpaint_runs_and_the_mask_matters(studio, out: Path) -> None:
    left = studio.generate(request(mask=mask_picture(0, 32)), out_dir=out).images[0]
    right = studio.generate(request(mask=mask_picture(32, 64)), out_dir=out).images[0]
    assert not np.array_equal(pixels(left.path), pixels(right.path))
    meta = read_metadata(left.path)
    assert (meta["mode"], meta["strength"], meta["denoising_steps"]) == ("inpaint", 1.0, 4)
    assert meta["mask"]["name"] == "mask.png"


def test_a_smaller_mask_of_the_same_aspect_is_resized(studio, out: Path) -> None:
    full = pixels(studio.generate(request(mask=mask_picture(0, 32)), out_dir=out).images[0].path)
    half = pixels(studio.generate(request(mask=mask_picture(0, 16, 32, 24)), out_dir=out).images[0].path)
    assert np.array_equal(full, half)  # the same mask at half the size, scaled up to the output
