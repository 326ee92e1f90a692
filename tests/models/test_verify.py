"""Verification of model folders: the tiny models pass, damaged copies fail with the reason named."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from imagestudio.models.verify import SafetensorsError, read_safetensors_header, verify_model_dir
from tests.helpers import run_cli
from tests.models.conftest import read_safetensors, shard_safetensors, write_safetensors

TRANSFORMER = "transformer/diffusion_pytorch_model.safetensors"


@pytest.mark.parametrize("model_id", ["tiny-z-image", "tiny-qwen-image-edit"])
def test_tiny_models_verify(shared_models_dir: Path, model_id: str) -> None:
    report = verify_model_dir(shared_models_dir / model_id)
    assert report.ok, report.problems
    assert set(report.components) >= {"scheduler", "text_encoder", "tokenizer", "transformer", "vae"}
    assert report.weights_files == 3


def test_truncated_by_one_byte(tiny_copy) -> None:
    folder = tiny_copy()
    path = folder / TRANSFORMER
    os.truncate(path, path.stat().st_size - 1)
    report = verify_model_dir(folder)
    assert not report.ok
    assert report.problems == (f"{TRANSFORMER}: {report.problems[0].split(': ', 1)[1]}",)
    assert "truncated" in report.problems[0]
    assert "1 bytes missing" in report.problems[0]


def test_extra_bytes_after_the_last_tensor(tiny_copy) -> None:
    folder = tiny_copy()
    with (folder / TRANSFORMER).open("ab") as handle:
        handle.write(b"\0\0\0")
    assert "3 unexpected bytes" in verify_model_dir(folder).problems[0]


def test_missing_component(tiny_copy) -> None:
    folder = tiny_copy()
    shutil.rmtree(folder / "vae")
    assert verify_model_dir(folder).problems == (
        "vae/: missing component folder (model_index.json names AutoencoderKL)",
    )


def test_bad_header_json(tiny_copy) -> None:
    folder = tiny_copy()
    path = folder / TRANSFORMER
    raw = bytearray(path.read_bytes())
    raw[8:16] = b"garbage!"
    path.write_bytes(bytes(raw))
    [problem] = verify_model_dir(folder).problems
    assert problem == f"{TRANSFORMER}: header is not valid JSON (corrupt or not a safetensors file)"


def test_header_length_past_the_end(tiny_copy) -> None:
    folder = tiny_copy()
    path = folder / TRANSFORMER
    raw = path.read_bytes()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw[8:])
    assert "runs past the end" in verify_model_dir(folder).problems[0]


def test_tensor_size_must_match_dtype_and_shape(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    write_safetensors(path, {"w": ({"dtype": "F32", "shape": [2, 3]}, bytes(20))})
    with pytest.raises(SafetensorsError, match="needs 24"):
        read_safetensors_header(path)
    write_safetensors(path, {"w": ({"dtype": "BF16", "shape": [2, 3]}, bytes(12))})
    assert read_safetensors_header(path)["w"]["shape"] == [2, 3]


def test_sharded_index(tiny_copy) -> None:
    folder = tiny_copy()
    shards = shard_safetensors(folder / TRANSFORMER, "diffusion_pytorch_model", 2)
    assert verify_model_dir(folder).ok
    shards[1].unlink()
    [problem] = verify_model_dir(folder).problems
    assert (
        problem
        == f"transformer/{shards[1].name}: missing (named by diffusion_pytorch_model.safetensors.index.json)"
    )


def test_shard_lacking_a_mapped_tensor(tiny_copy) -> None:
    folder = tiny_copy()
    shards = shard_safetensors(folder / TRANSFORMER, "diffusion_pytorch_model", 2)
    header, data = read_safetensors(shards[0])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = ({"dtype": entry["dtype"], "shape": entry["shape"]}, data[begin:end])
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    write_safetensors(shards[0], tensors)
    [problem] = verify_model_dir(folder).problems
    assert problem.startswith(f"transformer/{shards[0].name}: lacks 1 tensor(s)")
    assert repr(dropped) in problem


def test_pickle_only_and_missing_tokenizer(tiny_copy) -> None:
    folder = tiny_copy()
    (folder / TRANSFORMER).unlink()
    (folder / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    (folder / "tokenizer" / "tokenizer.json").unlink()
    (folder / "scheduler" / "scheduler_config.json").write_text("{not json")
    problems = verify_model_dir(folder).problems
    assert problems == (
        "scheduler/scheduler_config.json: does not parse as JSON (JSONDecodeError)",
        "tokenizer: no tokenizer vocabulary (one of tokenizer.json, vocab.json, tokenizer.model, "
        "spiece.model, vocab.txt)",
        "transformer: only pickle/other-format weights; imagestudio loads safetensors only",
    )


def test_processor_needs_its_config(tiny_copy) -> None:
    folder = tiny_copy("tiny-qwen-image-edit")
    (folder / "processor" / "preprocessor_config.json").unlink()
    assert verify_model_dir(folder).problems == (
        "processor: no preprocessor_config.json or processor_config.json",
    )


def test_not_a_pipeline(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "X"}))
    assert verify_model_dir(tmp_path).problems == (
        "model_index.json: names no components: not a diffusers pipeline",
    )
    assert verify_model_dir(tmp_path / "nowhere").problems == (f"{tmp_path / 'nowhere'}: not a folder",)


def test_cli_verify_passes_then_fails_on_truncated_copy(config_file: Path, tiny_copy, app_home: Path) -> None:
    done = run_cli("models", "verify", "tiny-z-image", config=config_file)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tiny-z-image: OK")

    copy = tiny_copy()
    path = copy / TRANSFORMER
    os.truncate(path, path.stat().st_size - 1)
    config = app_home / "copy.yaml"
    config.write_text(config_file.read_text() + f"models:\n  tiny-z-image:\n    path: {copy}\n")
    done = run_cli("models", "verify", "tiny-z-image", config=config)
    assert done.returncode == 1
    assert f"{TRANSFORMER}: truncated" in done.stderr
    assert "Traceback" not in done.stderr

    # The loader refuses it too, in one line that names the problem and the commands to fix it.
    done = run_cli("models", "path", "tiny-z-image", config=config)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert f"tiny-z-image at {copy} is incomplete: {TRANSFORMER}: truncated" in line
    assert "imagestudio models verify tiny-z-image" in line

    listed = run_cli("models", "list", "--json", config=config)
    rows = {row["id"]: row for row in json.loads(listed.stdout)["models"]}
    assert rows["tiny-z-image"]["state"] == "partial"
    assert "truncated" in rows["tiny-z-image"]["problem"]
