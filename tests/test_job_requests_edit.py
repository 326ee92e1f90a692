"""EditRequest and the img2img/inpaint fields of GenerateRequest: defaults and refusals, before any model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from imagestudio.config import Settings, load_settings
from imagestudio.errors import ConfigError
from imagestudio.job_requests import (
    EditRequest,
    GenerateRequest,
    default_edit_size,
    denoising_steps,
    fit_size,
)
from imagestudio.lora_refs import LoraRef
from imagestudio.registry import MODELS
from imagestudio.storage.inputs import InputImage
from tests.helpers import refused


def picture(width: int, height: int, name: str = "p.png", mode: str = "RGB", value: int = 128) -> InputImage:
    return InputImage(
        name=name,
        image=Image.new(mode, (width, height), value),
        sha256="0" * 64,
        format="PNG",
        source_mode=mode,
        byte_size=1,
    )


@pytest.fixture
def defaults(app_home) -> Settings:
    return load_settings()


def edit(settings: Settings, **fields: object) -> EditRequest:
    base: dict[str, object] = {
        "model": "qwen-image-edit-2511",
        "prompt": "swap them",
        "images": (picture(512, 512),),
    }
    return EditRequest.build(**{**base, **fields}).resolved(settings)


def test_official_defaults_come_from_the_registry(defaults: Settings) -> None:
    request = edit(defaults)
    assert (request.steps, request.true_cfg_scale, request.negative_prompt) == (40, 4.0, " ")
    assert (request.width, request.height) == (1024, 1024)
    assert (request.reference_vae_area, request.reference_condition_area) == (1024 * 1024, 384 * 384)
    assert request.lightning is None and request.seed is not None


@pytest.mark.parametrize(
    ("width", "height"), [(1200, 800), (800, 1200), (4000, 3000), (640, 360), (1000, 999)]
)
def test_default_size_matches_the_pipelines_own_rule(defaults: Settings, width: int, height: int) -> None:
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import calculate_dimensions

    request = edit(defaults, images=(picture(64, 64), picture(width, height)))  # the LAST image decides
    assert (request.width, request.height) == calculate_dimensions(1024 * 1024, width / height)


def test_tiny_model_default_size_uses_its_small_area(defaults: Settings) -> None:
    request = edit(defaults, model="tiny-qwen-image-edit", images=(picture(96, 48),))
    assert (request.width, request.height) == (96, 32)  # sqrt(64² x 2) ≈ 90.5 → 96; 45 → 32
    assert request.reference_vae_area == MODELS["tiny-qwen-image-edit"].reference_vae_area


def test_extreme_aspect_is_fitted_into_the_models_bounds(defaults: Settings) -> None:
    width, height = default_edit_size(MODELS["qwen-image-edit-2511"], picture(10_000, 500))
    assert width <= 3072 and height >= 256 and width % 32 == 0 and height % 32 == 0


def test_lightning_sets_steps_and_cfg_unless_given(defaults: Settings) -> None:
    fast = edit(defaults, lightning=4)
    assert (fast.steps, fast.true_cfg_scale, fast.negative_prompt) == (4, 1.0, None)
    assert edit(defaults, lightning=8).steps == 8
    assert edit(defaults, lightning=8, steps=6).steps == 6


def test_no_negative_prompt_when_cfg_is_off(defaults: Settings) -> None:
    assert edit(defaults, true_cfg_scale=1.0).negative_prompt is None
    assert edit(defaults, negative_prompt="blurry").negative_prompt == "blurry"


def test_reference_areas_request_beats_config_beats_registry(app_home, tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("models: {qwen-image-edit-2511: {reference_vae_area: 262144}}\n", encoding="utf-8")
    settings = load_settings(path)
    assert edit(settings).reference_vae_area == 512 * 512
    assert edit(settings).reference_condition_area == 384 * 384
    assert edit(settings, reference_vae_area=128 * 128).reference_vae_area == 128 * 128


def test_reference_area_on_a_text_to_image_model_is_a_config_error(app_home, tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("models: {z-image-turbo: {reference_vae_area: 65536}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="only applies to edit models"):
        load_settings(path)


@pytest.mark.parametrize(
    ("fields", "param", "fragment"),
    [
        ({"images": ()}, "images", "needs at least one input image"),
        ({"images": tuple(picture(64, 64) for _ in range(4))}, "images", "4 input images given"),
        ({"width": 512}, "height", "give both width and height, or neither"),
        ({"height": 512}, "width", "give both width and height, or neither"),
        ({"width": 500, "height": 512}, "width", "not a multiple of 16"),
        ({"steps": 1}, "steps", "below 2"),
        ({"true_cfg_scale": 0.5}, "true_cfg_scale", "greater than or equal to 1"),
        ({"lightning": 6}, "lightning", "4 or 8"),
        ({"lightning": 4, "negative_prompt": "blurry"}, "negative_prompt", "no effect at true CFG 1.0"),
        ({"model": "tiny-qwen-image-edit", "lightning": 4}, "lightning", "has no Lightning LoRA"),
        ({"model": "z-image-turbo"}, "model", "does not do edit"),
        ({"prompt": " "}, "prompt", "prompt is empty"),
    ],
)
def test_bad_edit_requests_are_refused(defaults: Settings, fields: dict, param: str, fragment: str) -> None:
    error = refused(edit, defaults, **fields)
    assert fragment in error.message
    assert error.param == param
    assert "\n" not in error.message


def test_edit_metadata_names_inputs_by_hash(defaults: Settings) -> None:
    request = edit(defaults, images=(picture(64, 64, "a.png"), picture(64, 64, "b.png")))
    request = request.model_copy(update={"loras": (LoraRef(source="x.safetensors", scale=0.5),)})
    fields = request.metadata_fields()
    assert [item["name"] for item in fields["input_images"]] == ["a.png", "b.png"]
    assert fields["input_images"][0]["sha256"] == "0" * 64
    assert fields["loras"] == [{"source": "x.safetensors", "scale": 0.5}]
    assert "images" not in fields and fields["true_cfg_scale"] == 4.0


# ------------------------------------------------------------------------------- img2img / inpaint


def generate(settings: Settings, **fields: object) -> GenerateRequest:
    base = {"model": "z-image-turbo", "prompt": "a fox", "init_image": picture(800, 600)}
    return GenerateRequest.build(**{**base, **fields}).resolved(settings)


def test_img2img_defaults(defaults: Settings) -> None:
    request = generate(defaults)
    assert request.mode == "img2img"
    assert (request.width, request.height) == (800, 592)  # the init image's size, sides rounded to 16
    assert request.strength == 0.6
    assert request.denoising_steps() == denoising_steps(8, 0.6) == 5
    inpaint = generate(defaults, mask=picture(400, 300, "m.png", "L", 255))
    assert (inpaint.mode, inpaint.strength, inpaint.denoising_steps()) == ("inpaint", 1.0, 8)


def test_img2img_size_is_scaled_into_bounds(defaults: Settings) -> None:
    request = generate(defaults, init_image=picture(4000, 3000))
    assert request.width * request.height <= 2048 * 2048
    assert request.width % 16 == 0 and request.height % 16 == 0
    assert abs(request.width / request.height - 4 / 3) < 0.02
    assert fit_size(MODELS["z-image-turbo"], 100, 100) == (256, 256)


def test_text_to_image_metadata_is_unchanged_by_the_new_fields(defaults: Settings) -> None:
    request = GenerateRequest.build(model="z-image-turbo", prompt="a fox", seed=1).resolved(defaults)
    assert request.mode == "text-to-image"
    fields = request.metadata_fields()
    assert not {"init_image", "mask", "strength", "mode", "loras", "denoising_steps"} & set(fields)


def test_img2img_metadata(defaults: Settings) -> None:
    fields = generate(defaults, mask=picture(800, 600, "m.png", "L", 255)).metadata_fields()
    assert fields["mode"] == "inpaint" and fields["init_image"]["name"] == "p.png"
    assert fields["mask"]["name"] == "m.png" and fields["strength"] == 1.0 and fields["denoising_steps"] == 8


@pytest.mark.parametrize(
    ("fields", "param", "fragment"),
    [
        ({"init_image": None, "mask": picture(8, 8, mode="L", value=255)}, "mask", "needs an init image"),
        ({"init_image": None, "strength": 0.5}, "strength", "needs an init image"),
        ({"strength": 0.0}, "strength", "greater than 0"),
        ({"strength": 1.5}, "strength", "less than or equal to 1"),
        ({"width": 512}, "height", "give both width and height"),
        ({"mask": picture(600, 600, "m.png", "L", 255)}, "mask", "aspect ratios differ"),
        ({"mask": picture(800, 600, "m.png", "L", 0)}, "mask", "all black"),
        ({"strength": 1e-17}, "strength", "runs no denoising step"),
    ],
)
def test_bad_img2img_requests_are_refused(
    defaults: Settings, fields: dict, param: str, fragment: str
) -> None:
    error = refused(generate, defaults, **fields)
    assert fragment in error.message
    assert error.param == param


def test_mask_of_another_size_but_the_same_aspect_is_accepted(defaults: Settings) -> None:
    assert generate(defaults, mask=picture(400, 300, "m.png", "L", 255)).mask is not None


@pytest.mark.parametrize("steps", [1, 2, 8, 9, 40])
@pytest.mark.parametrize("strength", [0.05, 0.1, 0.3, 0.6, 0.75, 0.99, 1.0])
def test_denoising_steps_match_the_pipelines_arithmetic(steps: int, strength: float) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImageImg2ImgPipeline

    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(steps)
    _, runs = ZImageImg2ImgPipeline.get_timesteps(
        SimpleNamespace(scheduler=scheduler), steps, strength, "cpu"
    )
    assert denoising_steps(steps, strength) == runs
