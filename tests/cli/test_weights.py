"""``--weights`` on ``generate``, ``edit`` and ``enhance``: the tiny quantized variants, offline."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.storage.metadata import read_metadata
from tests.conftest import PYTHON, cli_env


def run_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    argv = [PYTHON, "-m", "imagestudio", *args, "--config", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, env=cli_env(), timeout=600, check=False)


def written(done: subprocess.CompletedProcess[str]) -> tuple[Path, dict]:
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    path = Path(result["images"][0]["path"])
    return path, read_metadata(path)


@pytest.mark.slow
def test_generate_with_a_gguf_variant(config_file: Path, tmp_path: Path) -> None:
    done = run_cli(
        "generate", "a cat", "--model", "tiny-z-image", "--weights", "gguf-q4_0", "-W", "64", "-H", "64",
        "--steps", "2", "--seed", "5", "--out", str(tmp_path / "out"), "--json", config=config_file,
    )  # fmt: skip
    path, meta = written(done)
    assert json.loads(done.stdout)["weights"] == "gguf-q4_0"
    assert meta["weights"] == "gguf-q4_0"
    assert "Traceback" not in done.stderr and "OpenVINO" not in done.stderr
    with Image.open(path) as image:
        assert np.asarray(image).std() > 0


@pytest.mark.slow
def test_edit_with_an_sdnq_variant(config_file: Path, tmp_path: Path) -> None:
    picture = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(picture)
    done = run_cli(
        "edit", "make it blue", "--model", "tiny-qwen-image-edit", "--weights", "sdnq-uint4",
        "-i", str(picture), "--steps", "2", "--seed", "5", "--out", str(tmp_path / "out"), "--json",
        config=config_file,
    )  # fmt: skip
    _path, meta = written(done)
    assert meta["weights"] == "sdnq-uint4"
    assert meta["text_encoder_weights"] == "uint4"


def test_unknown_weights_is_one_line_and_exit_2(config_file: Path, tmp_path: Path) -> None:
    done = run_cli(
        "generate", "a cat", "--model", "tiny-z-image", "--weights", "gguf-q3_k_m", "--out", str(tmp_path),
        config=config_file,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "no weights 'gguf-q3_k_m'" in lines[0] and "gguf-q4_0" in lines[0]
    assert not (tmp_path / "out").exists()
