from __future__ import annotations

import pytest

from imagestudio.config import Settings, load_settings
from imagestudio.errors import InvalidRequest
from imagestudio.job_requests import MAX_SEED, GenerateRequest
from tests.helpers import refused


@pytest.fixture
def defaults(app_home) -> Settings:
    return load_settings()


def resolve(settings: Settings, **fields: object) -> GenerateRequest:
    return GenerateRequest.build(**{"model": "tiny-z-image", "prompt": "кот в шляпе", **fields}).resolved(
        settings
    )


def test_blanks_come_from_registry_and_config(defaults: Settings) -> None:
    request = resolve(defaults, model="z-image-turbo")
    assert (request.width, request.height) == (1024, 1024)
    assert request.steps == 8
    assert request.guidance_scale == 0.0
    assert request.seed is not None and 0 <= request.seed <= MAX_SEED


def test_config_defaults_apply(app_home, tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("generation: {default_width: 384, default_height: 384, default_num_inference_steps: 9}\n")
    request = resolve(load_settings(path), model="z-image-turbo")
    assert (request.width, request.height, request.steps) == (384, 384, 9)


def test_seeds_for_count(defaults: Settings) -> None:
    assert resolve(defaults, seed=7, count=3).seeds() == [7, 8, 9]
    assert resolve(defaults, seed=MAX_SEED, count=2).seeds() == [MAX_SEED, 0]


@pytest.mark.parametrize(
    ("fields", "param", "fragment"),
    [
        ({"prompt": ""}, "prompt", "prompt is empty"),
        ({"prompt": "   \n"}, "prompt", "prompt is empty"),
        ({"width": 40}, "width", "not a multiple of 16"),
        ({"height": 70}, "height", "not a multiple of 16"),
        ({"width": 4096}, "width", "outside 16..2048"),
        ({"steps": 0}, "steps", "greater than or equal to 1"),
        ({"guidance_scale": 3.5}, "guidance_scale", "guidance 3.5 is not allowed"),
        ({"negative_prompt": "blurry"}, "negative_prompt", "no effect"),
        ({"model": "nope"}, "model", "unknown model 'nope'"),
        ({"model": "tiny-qwen-image-edit"}, "model", "does not do text-to-image"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"count": 0}, "count", "greater than or equal to 1"),
    ],
)
def test_bad_input_is_refused_with_one_line(
    defaults: Settings, fields: dict, param: str, fragment: str
) -> None:
    error = refused(resolve, defaults, **fields)
    assert fragment in error.message
    assert error.param == param
    assert "\n" not in error.message


def test_real_model_size_bounds(defaults: Settings) -> None:
    with pytest.raises(InvalidRequest, match=r"outside 256\.\.3072"):
        resolve(defaults, model="z-image-turbo", width=128, height=128)
    with pytest.raises(InvalidRequest, match="allows at most"):
        GenerateRequest.build(prompt="x", model="z-image-turbo", width=2048, height=2048 + 16).resolved(
            defaults
        )
    assert resolve(defaults, model="z-image-turbo", width=384, height=384).width == 384
