"""The latent preview: the right layout for each pipeline's latents, the published projection, throttling.

The layouts are checked against what the tiny real pipelines hand to ``callback_on_step_end`` and against
the Qwen pipeline's own ``_unpack_latents``, so a diffusers change of either shows up here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagestudio.engine import preview


@pytest.fixture(scope="module")
def loaded(shared_models_dir: Path):
    import torch
    from diffusers import QwenImageEditPlusPipeline, ZImagePipeline

    from imagestudio.models.processor import load_edit_processor

    z = ZImagePipeline.from_pretrained(shared_models_dir / "tiny-z-image", dtype=torch.bfloat16)
    folder = shared_models_dir / "tiny-qwen-image-edit"
    processor = load_edit_processor(folder / "processor")
    extra = {"processor": processor} if processor is not None else {}
    q = QwenImageEditPlusPipeline.from_pretrained(folder, dtype=torch.bfloat16, **extra)
    for pipe in (z, q):
        pipe.set_progress_bar_config(disable=True)
    return {"z": z, "q": q}


def collect_latents(pipe, **kwargs) -> list:
    import torch

    seen = []

    def callback(_pipe, _index, _timestep, values):
        seen.append(values["latents"].clone())
        return values

    pipe(
        **kwargs,
        num_inference_steps=2,
        generator=torch.Generator("cpu").manual_seed(3),
        output_type="np",
        callback_on_step_end=callback,
    )
    return seen


def test_z_image_preview_from_the_pipeline_callback(loaded) -> None:
    latents = collect_latents(loaded["z"], prompt="кот в шляпе", height=48, width=80, guidance_scale=0.0)
    assert len(latents) == 2
    assert tuple(latents[0].shape) == (1, 16, 6, 10)  # spatial, not packed
    image = preview.latents_to_rgb(latents[-1], "z-image", 48, 80)
    assert image.size == (10, 6)
    assert image.mode == "RGB"


def test_qwen_packed_latents_unpack_like_the_pipeline(loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit_module
    from PIL import Image

    monkeypatch.setattr(edit_module, "VAE_IMAGE_SIZE", 32 * 32)
    monkeypatch.setattr(edit_module, "CONDITION_IMAGE_SIZE", 32 * 32)
    reference = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8))
    pipe = loaded["q"]
    latents = collect_latents(
        pipe, image=[reference], prompt="сделай небо синим", height=64, width=96, negative_prompt=" "
    )
    packed = latents[-1]
    assert tuple(packed.shape) == (1, 4 * 6, 64)  # (h/2)·(w/2) patches of 16 channels × 2 × 2

    ours = preview.unpack_qwen_latents(packed, 64, 96)
    theirs = pipe._unpack_latents(packed, 64, 96, pipe.vae_scale_factor)[:, :, 0]
    assert ours.shape == theirs.shape == (1, 16, 8, 12)
    assert bool((ours == theirs).all())

    image = preview.latents_to_rgb(packed, "qwen-image-edit", 64, 96)
    assert image.size == (12, 8)


@pytest.mark.parametrize(
    ("tokens", "aspect", "grid"),
    [(64 * 64, 1.0, (64, 64)), (48 * 64, 4 / 3, (48, 64)), (64 * 48, 3 / 4, (64, 48)), (7, 1.0, (1, 7))],
)
def test_packed_grid_follows_the_aspect(tokens: int, aspect: float, grid: tuple[int, int]) -> None:
    assert preview.packed_grid(tokens, aspect) == grid


@pytest.mark.parametrize("family", ["z-image", "qwen-image-edit"])
def test_projection_is_the_published_matrix(family) -> None:
    import torch

    factors, bias = preview._factors(family)
    # One latent pixel per channel, each a unit vector: pixel k must be row k of the matrix plus the bias.
    latents = torch.zeros(1, 16, 1, 16)
    for k in range(16):
        latents[0, k, 0, k] = 1.0
    pixels = np.asarray(preview.latents_to_rgb(latents, family, 8, 128), dtype=np.float64)
    expected = (np.clip(np.asarray(factors) + np.asarray(bias), -1, 1) + 1) * 127.5
    assert pixels.shape == (1, 16, 3)
    assert np.abs(pixels[0] - expected).max() <= 0.5


def test_unknown_layout_is_refused() -> None:
    import torch

    with pytest.raises(ValueError, match="unexpected latent shape"):
        preview.latents_to_rgb(torch.zeros(1, 4, 8, 8), "z-image", 64, 64)


def test_throttle_limits_previews() -> None:
    throttle = preview.PreviewThrottle(min_interval_s=1.0)
    assert throttle.due(1, 8, now=10.0)
    assert not throttle.due(2, 8, now=10.5)  # too soon
    assert throttle.due(3, 8, now=11.0)
    assert not throttle.due(8, 8, now=20.0)  # the last step: the real image is next


def test_runner_steps_carry_the_output_size(loaded) -> None:
    from imagestudio.engine.pipeline_calls import run_pipeline

    steps = []
    run_pipeline(
        loaded["z"],
        {"prompt": "кот", "height": 48, "width": 80, "guidance_scale": 0.0},
        [5],
        steps=2,
        dtype="bfloat16",
        on_step=steps.append,
    )
    assert [(s.step, s.width, s.height) for s in steps] == [(1, 80, 48), (2, 80, 48)]
    assert tuple(steps[0].latents.shape) == (1, 16, 6, 10)


def test_latent_previewer_makes_a_picture_when_due() -> None:
    import torch

    from imagestudio.engine.pipeline_calls import StepProgress

    previewer = preview.LatentPreviewer(min_interval_s=3600)
    packed = torch.randn(1, 4 * 6, 64)
    first = previewer(StepProgress(1, 1, 1, 8, packed, width=96, height=64))
    assert first is not None and first.size == (12, 8)  # unpacked at the image's aspect
    assert previewer(StepProgress(1, 1, 2, 8, packed, width=96, height=64)) is None  # throttled
    assert preview.LatentPreviewer()(StepProgress(1, 1, 8, 8, packed, 96, 64)) is None  # last step
    assert preview.LatentPreviewer()(StepProgress(1, 1, 1, 8, None)) is None  # no latents
    spatial = preview.LatentPreviewer()(StepProgress(1, 1, 1, 8, torch.randn(1, 16, 6, 10)))
    assert spatial is not None and spatial.size == (10, 6)
