"""Control images on the tiny Z-Image: Canny maps, the tiny ControlNet (real class), the step window."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagestudio.engine.control import control_map
from imagestudio.errors import InvalidRequest
from imagestudio.job_requests import ControlInput, GenerateRequest
from imagestudio.storage.inputs import InputImage, InputLimits, read_input_image

LIMITS = InputLimits(max_bytes=10_000_000, max_pixels=10_000_000)


def as_input(image: Image.Image, name: str = "control.png", purpose: str = "image") -> InputImage:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return read_input_image(buffer.getvalue(), LIMITS, name=name, purpose=purpose)  # type: ignore[arg-type]


def square(left: int = 16, size: int = 32) -> Image.Image:
    image = Image.new("RGB", (64, 64), "black")
    image.paste((255, 255, 255), (left, left, left + size, left + size))
    return image


def control(kind: str = "canny", image: Image.Image | None = None, **fields) -> ControlInput:
    return ControlInput(type=kind, image=as_input(image or square()), **fields)


def generate(studio, tmp_path, **fields) -> np.ndarray:
    base = {"model": "tiny-z-image", "prompt": "a house", "width": 64, "height": 64, "steps": 2, "seed": 4}
    [saved] = studio.generate(GenerateRequest.build(**{**base, **fields}), tmp_path).images
    with Image.open(saved.path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_canny_finds_the_edges_and_map_keeps_the_picture() -> None:
    edges = np.asarray(control_map(control("canny"), 64, 64))[..., 0]
    assert edges[16:48, 16].max() == 255 and edges[16:48, 47].max() == 255  # the square's sides
    assert edges[30, 30] == 0 and edges[5, 5] == 0  # nothing inside or outside it
    kept = control_map(control("map"), 128, 128)
    assert kept.size == (128, 128)
    assert np.asarray(kept)[64, 64].tolist() == [255, 255, 255]


def test_tiny_controlnet_is_the_real_class_in_union_2_1_layout(settings) -> None:
    import diffusers

    from imagestudio.models.controlnets import find_controlnet, load_controlnet
    from imagestudio.registry import CONTROLNETS

    path = find_controlnet(CONTROLNETS["tiny-z-image-controlnet"], settings)
    assert path is not None
    model = load_controlnet(path, None)
    assert isinstance(model, diffusers.ZImageControlNetModel)
    assert model.config.control_in_dim == 33
    assert model.config.add_control_noise_refiner == "control_noise_refiner"


def test_the_control_image_steers_and_is_recorded(studio, tmp_path) -> None:
    from imagestudio.storage.metadata import read_metadata, read_parameters

    plain = generate(studio, tmp_path)
    left = generate(studio, tmp_path, control=control("canny", square(4)))
    right = generate(studio, tmp_path, control=control("canny", square(28)))
    again = generate(studio, tmp_path, control=control("canny", square(4)))
    assert np.array_equal(left, again)
    assert not np.array_equal(left, right)
    assert not np.array_equal(left, plain)
    [path] = sorted((tmp_path).glob("*.png"), key=lambda p: p.stat().st_mtime)[-1:]
    meta = read_metadata(path)
    assert meta["control"]["type"] == "canny" and meta["control"]["weight"] == 0.75
    assert meta["control_model"] == "tiny-z-image-controlnet"
    assert len(meta["control_map_sha256"]) == 10
    text = read_parameters(path) or ""
    assert 'ControlNet 0: "Module: canny, Model: tiny-z-image-controlnet, Weight: 0.75' in text


def test_a_window_with_no_step_in_it_gives_the_picture_without_control(studio, tmp_path) -> None:
    plain = generate(studio, tmp_path)
    # two steps: an end at 1 % of them rounds to step 0, so the control never acts
    unused = generate(studio, tmp_path, control=control("canny", start=0.0, end=0.01))
    half = generate(studio, tmp_path, control=control("canny", start=0.5, end=1.0))
    assert np.abs(plain - unused).max() <= 1
    assert not np.array_equal(plain, half)


def test_control_with_inpainting(studio, tmp_path) -> None:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    start = as_input(Image.new("RGB", (64, 64), (40, 90, 160)), "start.png")
    out = generate(
        studio, tmp_path, control=control("map"), init_image=start, mask=as_input(mask, "mask.png", "mask")
    )
    assert out.shape == (64, 64, 3)


@pytest.mark.slow
def test_control_with_img2img_starts_from_the_picture(studio, tmp_path) -> None:
    rng = np.random.default_rng(5)
    start = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    img2img = {"init_image": as_input(start, "start.png"), "strength": 0.5, "steps": 8}
    plain = generate(studio, tmp_path, **img2img)
    # With a window no step falls in, the controlled img2img is diffusers' own img2img: the same skipped
    # steps, the same re-noised start picture, the same pixels.
    unused = generate(studio, tmp_path, control=control("canny", start=0.0, end=0.01), **img2img)
    assert np.abs(plain - unused).max() <= 1
    steered = generate(studio, tmp_path, control=control("canny"), **img2img)
    again = generate(studio, tmp_path, control=control("canny"), **img2img)
    elsewhere = generate(studio, tmp_path, control=control("canny", square(4)), **img2img)
    assert np.array_equal(steered, again)
    assert not np.array_equal(steered, plain)
    assert not np.array_equal(steered, elsewhere)
    stronger = generate(studio, tmp_path, control=control("canny"), **{**img2img, "strength": 0.75})
    assert not np.array_equal(steered, stronger)


@pytest.mark.slow
def test_control_with_the_hires_pass(studio, tmp_path) -> None:
    from imagestudio.storage.metadata import read_metadata

    hires = {"hires_scale": 2, "hires_upscaler": "tiny-upscaler", "hires_steps": 4, "hires_strength": 0.5}
    steered = generate(studio, tmp_path, control=control("canny"), **hires)
    plain = generate(studio, tmp_path, **hires)
    assert steered.shape == plain.shape == (128, 128, 3)
    assert not np.array_equal(steered, plain)
    newest = max(tmp_path.glob("*.png"), key=lambda p: p.stat().st_mtime_ns)
    assert "control" not in read_metadata(newest)
    [first] = [p for p in tmp_path.glob("*.png") if "control" in read_metadata(p)]
    meta = read_metadata(first)
    assert meta["hires_scale"] == 2 and meta["first_pass_width"] == 64
    assert meta["control"]["type"] == "canny" and meta["width"] == 128


def test_depth_control_runs_the_tiny_detector(studio, tmp_path, settings) -> None:
    from PIL import ImageDraw

    from imagestudio.engine.detectors import depth_map
    from imagestudio.storage.metadata import read_metadata

    scene = Image.new("RGB", (64, 64), (30, 30, 30))
    ImageDraw.Draw(scene).ellipse((12, 12, 52, 52), fill=(230, 200, 90))
    depth = depth_map(settings, "tiny-z-image", "cpu", scene)
    assert depth.size == (64, 64) and depth.mode == "RGB"
    assert np.asarray(depth).std() > 0  # a map, not a blank
    assert np.array_equal(np.asarray(depth), np.asarray(depth_map(settings, "tiny-z-image", "cpu", scene)))
    plain = generate(studio, tmp_path)
    steered = generate(studio, tmp_path, control=control("depth", scene))
    edges = generate(studio, tmp_path, control=control("canny", scene))
    assert not np.array_equal(steered, plain) and not np.array_equal(steered, edges)
    newest = max(tmp_path.glob("*.png"), key=lambda p: p.stat().st_mtime_ns)
    assert read_metadata(newest)["control"]["type"] == "canny"
    assert (
        sum(read_metadata(p).get("control", {}).get("type") == "depth" for p in tmp_path.glob("*.png")) == 1
    )


def test_hed_control_runs_the_tiny_detector(studio, tmp_path, settings) -> None:
    from PIL import ImageDraw

    from imagestudio.engine.detectors import hed_map
    from imagestudio.storage.metadata import read_metadata

    scene = Image.new("RGB", (64, 48), (30, 30, 30))
    ImageDraw.Draw(scene).rectangle((12, 10, 50, 40), fill=(230, 200, 90))
    soft = hed_map(settings, "tiny-z-image", "cpu", scene)
    assert soft.size == (64, 48) and soft.mode == "RGB"
    assert np.asarray(soft).std() > 0  # a map, not a blank
    assert np.array_equal(np.asarray(soft), np.asarray(hed_map(settings, "tiny-z-image", "cpu", scene)))
    plain = generate(studio, tmp_path)
    steered = generate(studio, tmp_path, control=control("hed", scene))
    assert not np.array_equal(steered, plain)
    newest = max(tmp_path.glob("*.png"), key=lambda p: p.stat().st_mtime_ns)
    assert read_metadata(newest)["control"]["type"] == "hed"


def test_a_missing_hed_detector_names_its_download(settings) -> None:
    from imagestudio.engine.detectors import require_map_detector
    from imagestudio.errors import ModelNotAvailable

    with pytest.raises(ModelNotAvailable) as refused:
        require_map_detector(settings, "z-image-turbo", "hed")
    message = refused.value.message
    assert "lllyasviel/Annotators, 29 MB, Apache-2.0" in message and "\n" not in message
    assert message.endswith("imagestudio models download controlnet-hed")


def test_a_missing_depth_detector_is_refused_before_the_model_loads(settings) -> None:
    from imagestudio.engine.detectors import require_map_detector
    from imagestudio.errors import ModelNotAvailable

    with pytest.raises(ModelNotAvailable, match="imagestudio models download depth-anything-v2-small"):
        require_map_detector(settings, "z-image-turbo", "depth")
    require_map_detector(settings, "z-image-turbo", "canny")  # no detector needed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"control": {"type": "sketch"}}, "control type 'sketch' is not available"),
        ({"control": {"type": "canny", "weight": 0.9}}, "outside 0.65..0.8"),
        ({"control": {"type": "canny", "start": 0.6, "end": 0.4}}, "must be before its end"),
    ],
)
def test_control_refusals_are_one_line(settings, fields, message) -> None:
    spec = dict(fields)
    spec["control"] = ControlInput(image=as_input(square()), **spec["control"])
    if spec.pop("init_image", None):
        spec["init_image"] = as_input(square(), "start.png")
    request = GenerateRequest.build(model="tiny-z-image", prompt="x", width=64, height=64, **spec)
    with pytest.raises(InvalidRequest, match=message):
        request.resolved(settings)


def test_mlsd_keeps_the_long_straight_lines_only() -> None:
    from PIL import ImageDraw

    lines = np.asarray(control_map(control("mlsd"), 64, 64))
    assert lines.shape == (64, 64, 3) and set(np.unique(lines)) == {0, 255}  # white on black
    assert lines[20:44, 15:18].max() == 255 and lines[20:44, 46:49].max() == 255  # the square's sides
    assert lines[24:40, 24:40].max() == 0 and lines[:8, :8].max() == 0  # nothing inside or outside it
    # A segment shorter than MLSD_MIN_LENGTH of the picture is left out; the same one, longer, is kept.
    short = Image.new("RGB", (200, 200), "black")
    ImageDraw.Draw(short).rectangle((100, 50, 105, 56), fill="white")
    assert np.asarray(control_map(control("mlsd", short), 200, 200)).max() == 0
    assert np.asarray(control_map(control("canny", short), 200, 200)).max() == 255
    long = Image.new("RGB", (200, 200), "black")
    ImageDraw.Draw(long).rectangle((100, 50, 105, 150), fill="white")
    assert np.asarray(control_map(control("mlsd", long), 200, 200))[60:140, 98:108].max() == 255


def test_the_pose_map_is_drawn_openpose_style() -> None:
    from imagestudio.engine.pose_drawing import COLORS, LIMB_SHADE, draw_pose_map, openpose_points

    # COCO-17 (x, y): a person standing, facing us (their right on the picture's left).
    coco = np.array(
        [[50, 20], [53, 17], [47, 17], [56, 18], [44, 18], [60, 32], [40, 32], [64, 48], [36, 48],
         [66, 62], [34, 62], [56, 64], [44, 64], [57, 82], [43, 82], [58, 98], [42, 98]],
        dtype=np.float32,
    )  # fmt: skip
    sure = np.full(17, 0.9, dtype=np.float32)
    points = openpose_points(coco, sure)
    assert points[1] == (50.0, 32.0)  # the neck: the shoulders' midpoint
    assert points[2] == (40.0, 32.0) and points[5] == (60.0, 32.0)  # right, left shoulder
    assert points[14] == (47.0, 17.0) and points[17] == (56.0, 18.0)  # right eye, left ear
    canvas = draw_pose_map((100, 110), [points])
    assert canvas[0, 0].tolist() == [0, 0, 0]  # black background
    assert canvas[32, 50].tolist() == list(COLORS[1])  # the neck's dot
    assert canvas[48, 36].tolist() == list(COLORS[3])  # the right elbow's dot
    # Between the left hip (OpenPose 11) and knee (12): limb 10, at 60 % of its colour.
    assert canvas[73, 56].tolist() == [int(c * LIMB_SHADE) for c in COLORS[10]]
    # A shoulder the detector is unsure of: no neck, so no limb or dot needs it.
    unsure = sure.copy()
    unsure[6] = 0.1
    partial = openpose_points(coco, unsure)
    assert partial[1] is None and partial[2] is None
    assert draw_pose_map((100, 110), [partial])[32, 50].tolist() == [0, 0, 0]


def test_pose_control_runs_the_tiny_detectors(studio, tmp_path, settings) -> None:
    from PIL import ImageDraw

    from imagestudio.engine.detectors import pose_map
    from imagestudio.engine.pose_drawing import COLORS, LIMB_SHADE
    from imagestudio.storage.metadata import read_metadata

    scene = Image.new("RGB", (64, 64), (30, 30, 30))
    ImageDraw.Draw(scene).ellipse((20, 6, 44, 58), fill=(200, 150, 90))
    pose = pose_map(settings, "tiny-z-image", "cpu", scene)
    assert pose.size == (64, 64) and pose.mode == "RGB"
    pixels = np.asarray(pose).reshape(-1, 3)
    drawn = {tuple(p) for p in pixels[pixels.any(axis=1)].tolist()}
    allowed = {*COLORS, *(tuple(int(c * LIMB_SHADE) for c in color) for color in COLORS)}
    assert drawn and drawn <= allowed  # a skeleton in OpenPose's colours, on black
    assert np.array_equal(np.asarray(pose), np.asarray(pose_map(settings, "tiny-z-image", "cpu", scene)))
    plain = generate(studio, tmp_path)
    steered = generate(studio, tmp_path, control=control("pose", scene))
    assert not np.array_equal(steered, plain)
    [newest] = sorted(tmp_path.glob("*.png"), key=lambda p: p.stat().st_mtime_ns)[-1:]
    assert read_metadata(newest)["control"]["type"] == "pose"


def test_a_picture_without_a_person_is_refused_in_one_line(settings, tmp_path) -> None:
    from imagestudio.engine.detectors import pose_map
    from imagestudio.models.detectors import DETECTORS_DIR, build_tiny_person, build_tiny_pose

    # The tiny person detector as random weights leave it (every class at its ~1 % prior): it finds no one.
    models = tmp_path / "models"
    build_tiny_person(models / DETECTORS_DIR / "tiny-person", finds_people=False)
    own = settings.model_copy(update={"storage": settings.storage.model_copy(update={"models_dir": models})})
    with pytest.raises(InvalidRequest) as refused:
        pose_map(own, "tiny-z-image", "cpu", square())
    assert refused.value.message.startswith("No person found in the control picture")
    assert "type map" in refused.value.message and "\n" not in refused.value.message
    assert refused.value.code == "no_person"
    # People found, but not one joint of theirs the (down-biased) pose model is sure of: refused too.
    models = tmp_path / "unsure"
    build_tiny_pose(models / DETECTORS_DIR / "tiny-pose", sure=False)
    own = settings.model_copy(update={"storage": settings.storage.model_copy(update={"models_dir": models})})
    with pytest.raises(InvalidRequest, match=r"No person found .*no joint of the people found"):
        pose_map(own, "tiny-z-image", "cpu", square())


def test_a_missing_pose_detector_names_both_models_and_one_command(settings) -> None:
    from imagestudio.engine.detectors import require_map_detector
    from imagestudio.errors import ModelNotAvailable

    with pytest.raises(ModelNotAvailable) as refused:
        require_map_detector(settings, "z-image-turbo", "pose")
    message = refused.value.message
    assert "usyd-community/vitpose-base-simple, 343 MB" in message
    assert "PekingU/rtdetr_r50vd_coco_o365, 172 MB" in message
    assert message.endswith("imagestudio models download vitpose-base-simple") and "\n" not in message
    require_map_detector(settings, "z-image-turbo", "mlsd")  # OpenCV: no detector needed


def test_pose_without_its_extra_is_refused_before_the_model_loads(studio, tmp_path, monkeypatch) -> None:
    """scipy is the ``pose`` extra: without it a pose job is one line naming the extra, nothing loaded."""
    import sys

    from imagestudio.errors import ModelNotAvailable

    monkeypatch.setitem(sys.modules, "scipy", None)  # as if not installed: looking it up fails
    with pytest.raises(ModelNotAvailable) as refused:
        generate(studio, tmp_path, control=control("pose"))
    assert refused.value.message.endswith('pip install "imagestudio[pose]"')
    assert refused.value.code == "pose_needs_extra" and "\n" not in refused.value.message
    assert studio.manager.loaded_id is None and not list(tmp_path.glob("*.png"))
