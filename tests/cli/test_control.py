"""`generate --control pose:… / mlsd:…` as a user runs them (a subprocess), and the one-line refusal of a
control picture where the pose detector finds no one."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from imagestudio.storage.metadata import read_metadata
from tests.helpers import run_cli

ARGS = ("generate", "--model", "tiny-z-image", "a dancer", "-W", "64", "-H", "64", "--steps", "2")


def _photo(path: Path) -> Path:
    image = Image.new("RGB", (64, 64), (20, 30, 60))
    draw = ImageDraw.Draw(image)
    draw.ellipse((24, 4, 40, 20), fill=(220, 180, 140))
    draw.rectangle((22, 22, 42, 60), fill=(200, 60, 60))
    image.save(path)
    return path


@pytest.mark.slow
def test_pose_and_mlsd_control_from_the_command_line(config_file: Path, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "dancer.png")
    for kind in ("pose", "mlsd"):
        out = str(tmp_path / kind)
        done = run_cli(*ARGS, "--control", f"{kind}:{photo}", "--out", out, config=config_file)
        assert done.returncode == 0, done.stderr
        meta = read_metadata(Path(done.stdout.strip()))
        assert meta["control"]["type"] == kind and meta["control"]["weight"] == 0.75
        assert len(meta["control_map_sha256"]) == 10


@pytest.mark.slow
def test_no_person_in_the_picture_is_one_line_and_exit_2(
    app_home: Path, shared_models_dir: Path, tmp_path: Path
) -> None:
    from imagestudio.models.detectors import DETECTORS_DIR, build_tiny_person

    # A models folder with the tiny Z-Image and a person detector left at its random start: it finds no
    # one (the tiny ViTPose and ControlNet are built there on first use, as anywhere).
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny-z-image").symlink_to(shared_models_dir / "tiny-z-image", target_is_directory=True)
    build_tiny_person(models / DETECTORS_DIR / "tiny-person", finds_people=False)
    config = tmp_path / "config.yaml"
    config.write_text(f"storage:\n  models_dir: {models}\n  outputs_dir: {app_home / 'outputs'}\n")
    done = run_cli(*ARGS, "--control", f"pose:{_photo(tmp_path / 'p.png')}", config=config)
    assert done.returncode == 2, done.stderr
    assert "No person found in the control picture" in done.stderr and "type map" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not list((app_home / "outputs").glob("**/*.png"))
