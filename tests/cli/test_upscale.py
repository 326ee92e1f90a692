"""`imagestudio upscale`, `generate --hires` and `generate --control` as a user runs them (a subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from imagestudio.storage.metadata import read_metadata
from tests.helpers import run_cli


def _photo(path: Path, size: tuple[int, int] = (48, 32)) -> Path:
    image = Image.new("RGB", size, "navy")
    image.paste((250, 250, 250), (8, 8, 24, 24))
    image.save(path)
    return path


@pytest.mark.slow
def test_upscale_then_generate_with_hires_and_control(config_file: Path, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    out = tmp_path / "out"
    done = run_cli(
        "upscale",
        str(photo),
        "--model",
        "tiny-upscaler",
        "--scale",
        "2",
        "--out",
        str(out),
        config=config_file,
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    with Image.open(line) as image:
        assert image.size == (96, 64)
    assert read_metadata(Path(line))["upscaler"] == "tiny-upscaler"

    args = ("generate", "--model", "tiny-z-image", "a house", "-W", "64", "-H", "64", "--steps", "2")
    control = f"canny:{_photo(tmp_path / 'c.png', (64, 64))}:0.7"
    done = run_cli(
        *args, "--hires", "2", "--hires-upscaler", "tiny-upscaler", "--control", control,
        "--out", str(out), config=config_file,
    )  # fmt: skip
    # the control steers the first pass, the hires pass enlarges it
    assert done.returncode == 0, done.stderr
    with Image.open(done.stdout.strip()) as image:
        assert image.size == (128, 128)
    meta = read_metadata(Path(done.stdout.strip()))
    assert meta["control"]["weight"] == 0.7 and meta["control"]["type"] == "canny"
    assert meta["hires_scale"] == 2 and meta["first_pass_width"] == 64
    # and img2img from a start picture under the same control
    done = run_cli(
        *args, "--control", control, "--init-image", str(tmp_path / "c.png"), "--strength", "0.5",
        "--out", str(out), config=config_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = read_metadata(Path(done.stdout.strip()))
    assert meta["mode"] == "img2img" and meta["control"]["type"] == "canny"


@pytest.mark.slow
def test_upscale_refusals_are_one_line(config_file: Path, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    cases = [
        (("upscale", str(photo), "--model", "nope"), "unknown upscaler 'nope'"),
        (("upscale", str(photo), "--model", "tiny-upscaler", "--scale", "9"), "scale"),
        (("upscale", str(tmp_path / "missing.png"), "--model", "tiny-upscaler"), "missing.png"),
        (("generate", "--model", "tiny-z-image", "x", "--control", f"hed:{photo}:0.95"), "outside 0.65..0.8"),
        (("generate", "--model", "tiny-z-image", "x", "--control", "canny"), "TYPE:IMAGE"),
    ]
    for args, text in cases:
        done = run_cli(*args, config=config_file)
        assert done.returncode == 2, (args, done.stderr)
        assert text in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
