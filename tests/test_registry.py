from __future__ import annotations

import pytest

from imagestudio.errors import InvalidRequest
from imagestudio.registry import MODELS, diffusers_version, get_model, z_image_turbo_steps


def test_entries() -> None:
    assert set(MODELS) == {"z-image-turbo", "qwen-image-edit-2511", "tiny-z-image", "tiny-qwen-image-edit"}
    assert MODELS["z-image-turbo"].repo_id == "Tongyi-MAI/Z-Image-Turbo"
    assert MODELS["qwen-image-edit-2511"].repo_id == "Qwen/Qwen-Image-Edit-2511"
    assert MODELS["z-image-turbo"].pipeline_class == "ZImagePipeline"
    assert MODELS["qwen-image-edit-2511"].pipeline_class == "QwenImageEditPlusPipeline"


def test_tiny_models_stand_in_for_the_real_ones() -> None:
    for tiny, real in (("tiny-z-image", "z-image-turbo"), ("tiny-qwen-image-edit", "qwen-image-edit-2511")):
        t, r = MODELS[tiny], MODELS[real]
        assert t.tiny and not r.tiny
        assert (t.pipeline_class, t.task, t.default_steps, t.fixed_guidance) == (
            r.pipeline_class,
            r.task,
            r.default_steps,
            r.fixed_guidance,
        )


def test_official_settings() -> None:
    turbo = MODELS["z-image-turbo"]
    assert turbo.fixed_guidance == 0.0
    assert turbo.default_steps == z_image_turbo_steps()
    edit = MODELS["qwen-image-edit-2511"]
    assert (edit.default_steps, edit.default_true_cfg, edit.default_negative_prompt) == (40, 4.0, " ")
    assert edit.max_input_images == 3


def test_turbo_steps_follow_the_installed_diffusers() -> None:
    import diffusers

    major, minor = (int(x) for x in diffusers.__version__.split(".")[:2])
    assert diffusers_version() == (major, minor)
    assert z_image_turbo_steps() == (8 if (major, minor) >= (0, 39) else 9)


def test_unknown_model_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidRequest) as info:
        get_model("sdxl")
    for model_id in MODELS:
        assert model_id in info.value.message


def test_task_mismatch() -> None:
    with pytest.raises(InvalidRequest, match="does not do text-to-image"):
        get_model("qwen-image-edit-2511", task="text-to-image")
