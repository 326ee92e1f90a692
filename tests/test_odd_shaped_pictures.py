"""Pictures of extreme aspect ratio (a valid 10000 x 1 PNG is within every pixel limit) are refused in the
one request builder, with one line naming the limit, for every entry point; the API routes are in
``tests/api/test_odd_shaped_pictures.py``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from imagestudio.config import Settings, load_settings
from imagestudio.errors import InvalidRequest
from imagestudio.job_requests import MAX_INPUT_ASPECT, build_image_request, reference_size
from imagestudio.storage.inputs import InputImage
from tests.conftest import PYTHON, cli_env


def picture(width: int, height: int, name: str = "strip.png", mode: str = "RGB") -> InputImage:
    return InputImage(
        name=name,
        image=Image.new(mode, (width, height), 255),
        sha256="0" * 64,
        format="PNG",
        source_mode=mode,
        byte_size=1,
    )


MODELS = ["tiny-qwen-image-edit", "qwen-image-edit-2511", "tiny-z-image", "z-image-turbo"]


@pytest.fixture
def settings(app_home) -> Settings:
    return load_settings()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("width", "height"), [(10_000, 1), (1, 10_000), (17 * 64, 64)])
def test_an_extreme_aspect_ratio_is_refused_naming_the_limit(
    settings: Settings, model: str, width: int, height: int
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        build_image_request(settings, model=model, prompt="x", images=[picture(width, height)])
    message = str(refused.value)
    assert f"{width}x{height}" in message and f"{MAX_INPUT_ASPECT}:1" in message and "\n" not in message
    assert refused.value.param in {"image", "init_image"}


def test_a_mask_of_an_extreme_picture_is_refused_too(settings: Settings) -> None:
    with pytest.raises(InvalidRequest) as refused:
        build_image_request(
            settings,
            model="tiny-z-image",
            prompt="x",
            images=[picture(10_000, 1)],
            mask=picture(10_000, 1, mode="L"),
        )
    assert refused.value.param == "init_image"


@pytest.mark.parametrize("model", MODELS)
def test_elongated_pictures_within_the_limit_are_accepted(settings: Settings, model: str) -> None:
    # Panoramas and tall phone screenshots are ordinary; 12:1 is what Z-Image itself can make.
    for width, height in ((12 * 64, 64), (64, 12 * 64), (4000, 1000)):
        build_image_request(settings, model=model, prompt="x", images=[picture(width, height)])


def test_a_small_reference_area_limits_the_aspect_it_can_encode(settings: Settings) -> None:
    """At 32² the pipeline would scale a 5:1 reference's short side to 0 px: refused, naming the area."""
    assert 0 in reference_size(32 * 32, 5 * 64, 64)
    with pytest.raises(InvalidRequest) as refused:
        build_image_request(
            settings,
            model="tiny-qwen-image-edit",
            prompt="x",
            images=[picture(5 * 64, 64)],
            reference_condition_area=32 * 32,
        )
    assert refused.value.param == "reference_condition_area"
    assert "at most 3:1" in str(refused.value)
    build_image_request(
        settings,
        model="tiny-qwen-image-edit",
        prompt="x",
        images=[picture(3 * 64, 64)],
        reference_condition_area=32 * 32,
    )


def test_the_reference_size_is_the_pipelines_own() -> None:
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import calculate_dimensions

    for area in (32 * 32, 64 * 64, 384 * 384, 1024 * 1024):
        for width, height in ((10_000, 1), (640, 64), (64, 640), (1000, 999), (17, 3)):
            assert reference_size(area, width, height) == calculate_dimensions(area, width / height)


@pytest.mark.slow
def test_edit_json_refuses_a_strip_as_json_with_exit_2(config_file: Path, tmp_path: Path) -> None:
    strip = tmp_path / "strip.png"
    Image.new("RGB", (10_000, 1), "white").save(strip)
    argv = [PYTHON, "-m", "imagestudio", "edit", "-m", "tiny-qwen-image-edit", "-i", str(strip), "x"]
    argv += ["--steps", "2", "--json", "--out", str(tmp_path / "out"), "--config", str(config_file)]
    done = subprocess.run(argv, capture_output=True, text=True, env=cli_env(), timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    error = json.loads(done.stdout)["error"]
    assert "10000x1" in error["message"] and f"{MAX_INPUT_ASPECT}:1" in error["message"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
