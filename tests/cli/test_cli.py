"""The CLI as a user runs it: a fresh ``python -m imagestudio`` process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.storage.metadata import read_metadata
from tests.conftest import PYTHON, cli_env
from tests.helpers import heavy_imports_after, run_cli


@pytest.mark.slow
def test_generate_twice_gives_identical_pixels(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("generate", "--model", "tiny-z-image", "кот в шляпе", "--width", "64", "--height", "64")
    args += ("--steps", "2", "--seed", "7", "--out", str(out))
    paths = []
    for _ in range(2):
        done = run_cli(*args, config=config_file)
        assert done.returncode == 0, done.stderr
        [line] = done.stdout.splitlines()
        paths.append(Path(line))
    assert paths[0] != paths[1]
    arrays = []
    for path in paths:
        assert path.parent == out
        with Image.open(path) as image:
            assert image.size == (64, 64)
            arrays.append(np.asarray(image))
        meta = read_metadata(path)
        assert meta["prompt"] == "кот в шляпе"
        assert meta["seed"] == 7
    assert np.array_equal(arrays[0], arrays[1])


@pytest.mark.slow
def test_generate_json(config_file: Path, tmp_path: Path) -> None:
    done = run_cli(
        "generate", "--model", "tiny-z-image", "fox", "-W", "32", "-H", "48", "--steps", "1",
        "--seed", "3", "--count", "2", "--out", str(tmp_path), "--json", config=config_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["model"] == "tiny-z-image"
    assert payload["elapsed_s"] > 0
    assert [(i["seed"], i["width"], i["height"]) for i in payload["images"]] == [(3, 32, 48), (4, 32, 48)]
    assert all(Path(i["path"]).is_file() for i in payload["images"])


def test_bad_width_exits_2_with_one_line_and_loads_nothing(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("generate", "--model", "tiny-z-image", "x", "--width", "40", "--out", str(out))
    done = run_cli(*args, config=config_file)
    assert done.returncode == 2
    assert "multiple of 16" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_user_errors_exit_2(config_file: Path, app_home: Path) -> None:
    bad_config = app_home / "bad.yaml"
    bad_config.write_text("device: {type: tpu}\n")
    cases = [
        (("generate", "--model", "nope", "x"), config_file, "unknown model 'nope'"),
        (("generate", "--model", "tiny-z-image", "  "), config_file, "prompt is empty"),
        (("generate", "--model", "tiny-z-image", "x", "--guidance", "2"), config_file, "not allowed"),
        (("generate", "--model", "tiny-z-image", "x", "--steps", "0"), config_file, "steps"),
        (("generate", "x"), bad_config, "device.type = 'tpu'"),
        (("models", "path", "z-image-turbo"), config_file, "imagestudio models download z-image-turbo"),
    ]
    for args, config, fragment in cases:
        done = run_cli(*args, config=config)
        assert done.returncode == 2, (args, done.stderr)
        assert fragment in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_help_and_models_list_do_not_import_torch(app_home: Path) -> None:
    assert "HEAVY []" in heavy_imports_after(["--help"], ["generate", "--help"], ["models", "list"])


def test_models_list_and_path(config_file: Path, shared_models_dir: Path) -> None:
    done = run_cli("models", "list", "--json", config=config_file)
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)["models"]}
    assert rows["tiny-z-image"]["state"] == "present"
    assert rows["tiny-z-image"]["path"] == str(shared_models_dir / "tiny-z-image")
    assert rows["z-image-turbo"]["state"] == "missing"
    done = run_cli("models", "path", "tiny-qwen-image-edit", config=config_file)
    assert done.returncode == 0
    assert done.stdout.strip() == str(shared_models_dir / "tiny-qwen-image-edit")


def test_python_m_and_console_script_agree() -> None:
    done = subprocess.run(
        [PYTHON, "-m", "imagestudio", "--help"], capture_output=True, text=True, env=cli_env(), check=False
    )
    assert done.returncode == 0
    assert "generate" in done.stdout
