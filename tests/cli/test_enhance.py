"""``imagestudio enhance`` and ``--enhance`` / ``--variety`` on generate and edit, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.storage.metadata import read_metadata
from tests.cli.test_cli import run_cli


@pytest.mark.slow
def test_enhance_prints_the_rewrite(config_file: Path) -> None:
    args = ("enhance", "кот в шляпе", "-m", "tiny-z-image", "--seed", "2", "--max-tokens", "16", "--json")
    done = run_cli(*args, config=config_file)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["original_prompt"] == "кот в шляпе" and payload["model"] == "tiny-z-image"
    assert payload["tokens"] <= 16 and payload["prompt"]
    # The plain form prints the same rewrite alone (same seed, same words).
    plain = run_cli(*args[:-1], config=config_file)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == payload["prompt"]


@pytest.mark.slow
def test_generate_with_enhance_and_variety_records_both_prompts(config_file: Path, tmp_path: Path) -> None:
    done = run_cli(
        "generate", "рыжий кот", "-m", "tiny-z-image", "-W", "64", "-H", "64", "--steps", "2", "--seed", "5",
        "--variety", "0.4", "--enhance", "--out", str(tmp_path), config=config_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = read_metadata(Path(done.stdout.strip()))
    assert meta["variety"] == 0.4
    if "warning" in done.stderr:
        # A rewrite the tiny model botched leaves the prompt as typed (and says so).
        assert meta["prompt"] == "рыжий кот" and "original_prompt" not in meta
    else:
        assert "improved prompt: " in done.stderr
        assert meta["original_prompt"] == "рыжий кот" and meta["prompt"] != "рыжий кот"


@pytest.mark.slow
def test_edit_with_enhance_looks_at_the_pictures(config_file: Path, tmp_path: Path) -> None:
    picture = tmp_path / "in.png"
    Image.fromarray(np.full((48, 64, 3), 200, dtype=np.uint8)).save(picture)
    done = run_cli(
        "edit", "make Picture 1 blue", "-i", str(picture), "-m", "tiny-qwen-image-edit", "--steps", "2",
        "-W", "64", "-H", "48", "--enhance", "--out", str(tmp_path / "out"), config=config_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = read_metadata(Path(done.stdout.strip()))
    if "warning" in done.stderr:
        assert meta["prompt"] == "make Picture 1 blue" and "original_prompt" not in meta
    else:
        assert meta["original_prompt"] == "make Picture 1 blue" and meta["prompt"] != meta["original_prompt"]


def test_bad_values_exit_2_with_one_line(config_file: Path, tmp_path: Path) -> None:
    for args in (
        ("generate", "fox", "-m", "tiny-z-image", "--variety", "1.5", "--out", str(tmp_path)),
        ("enhance", "fox", "-m", "tiny-z-image", "--max-tokens", "2"),
        ("enhance", "   ", "-m", "tiny-z-image"),
    ):
        done = run_cli(*args, config=config_file)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")
        assert not list(tmp_path.glob("*.png"))
