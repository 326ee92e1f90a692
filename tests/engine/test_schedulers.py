"""Lightning's noise schedule: swapped in for one job on the real (tiny) edit pipeline, then put back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imagestudio.engine.loader import load_pipeline
from imagestudio.engine.schedulers import scheduler_overrides
from imagestudio.registry import get_model

STEPS = 4


@pytest.fixture(scope="module")
def pipe(shared_models_dir):
    from imagestudio.config import load_settings

    settings = load_settings(None, overrides={"storage": {"models_dir": str(shared_models_dir)}})
    return load_pipeline(get_model("tiny-qwen-image-edit"), settings)


def sigmas_used(pipe) -> np.ndarray:
    """Run a real 4-step edit and return the sigmas its scheduler stepped through."""
    seen: list[np.ndarray] = []

    def remember(pipeline, step, timestep, kwargs):
        if step == 0:
            seen.append(pipeline.scheduler.sigmas.numpy().copy())
        return kwargs

    pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    pipe(
        image=[Image.fromarray(pixels)],
        prompt="x",
        num_inference_steps=STEPS,
        true_cfg_scale=1.0,
        height=32,
        width=32,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
        callback_on_step_end=remember,
    )
    return seen[0][:STEPS]


def test_lightning_samples_at_a_fixed_shift_of_three_then_the_model_schedule_returns(pipe) -> None:
    original = pipe.scheduler
    before = sigmas_used(pipe)
    lightning = dict(get_model("qwen-image-edit-2511").lightning_scheduler)
    with scheduler_overrides(pipe, lightning):
        swapped = sigmas_used(pipe)
        assert type(pipe.scheduler) is type(original)
    # A time shift of 3 maps each of the pipeline's evenly spaced sigmas s to 3s / (1 + 2s), whatever
    # the image size, with no stretching of the last step.
    even = np.linspace(1.0, 1 / STEPS, STEPS)
    np.testing.assert_allclose(swapped, 3 * even / (1 + 2 * even), rtol=1e-5)
    assert not np.allclose(before, swapped)

    assert pipe.scheduler is original
    np.testing.assert_allclose(sigmas_used(pipe), before)


def test_no_overrides_leave_the_scheduler_alone(pipe) -> None:
    original = pipe.scheduler
    with scheduler_overrides(pipe, {}):
        assert pipe.scheduler is original


def test_the_scheduler_comes_back_after_a_failed_job(pipe) -> None:
    original = pipe.scheduler
    with pytest.raises(RuntimeError), scheduler_overrides(pipe, {"shift_terminal": None}):
        assert pipe.scheduler is not original
        raise RuntimeError("the job failed")
    assert pipe.scheduler is original


def test_only_the_real_edit_model_has_a_lightning_schedule() -> None:
    assert get_model("qwen-image-edit-2511").lightning_scheduler
    assert not get_model("tiny-qwen-image-edit").lightning_scheduler
    assert not get_model("z-image-turbo").lightning_scheduler
