"""Fixtures for the model-files tests: damaged copies of the tiny models, and a local fake hub."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.models.fakehub import FakeHub

TEST_REPO = "imagestudio-test/tiny-z-image"
#: The largest file of the served repository: the one interrupted in the resume tests.
BIG_FILE = "transformer/diffusion_pytorch_model-00001-of-00002.safetensors"


def read_safetensors(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def write_safetensors(path: Path, tensors: dict[str, tuple[dict, bytes]]) -> None:
    """Write tensors given as (header entry without offsets, raw bytes), the way the format lays them out."""
    header: dict = {"__metadata__": {"format": "pt"}}
    data = bytearray()
    for name, (entry, raw) in tensors.items():
        header[name] = {**entry, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8 bytes
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + bytes(data))


def shard_safetensors(source: Path, stem: str, parts: int) -> list[Path]:
    """Split ``source`` into shards plus their index, named as ``save_pretrained`` names them; deletes it."""
    header, data = read_safetensors(source)
    names = sorted((n for n in header if n != "__metadata__"), key=lambda n: header[n]["data_offsets"][0])
    # Put the big tensors first so the first shard is the largest file of the repository.
    names.sort(key=lambda n: -(header[n]["data_offsets"][1] - header[n]["data_offsets"][0]))
    groups = [names[i::parts] for i in range(parts)]
    weight_map, shards = {}, []
    for number, group in enumerate(groups, start=1):
        shard = source.parent / f"{stem}-{number:05d}-of-{parts:05d}.safetensors"
        tensors = {}
        for name in group:
            begin, end = header[name]["data_offsets"]
            entry = {k: v for k, v in header[name].items() if k != "data_offsets"}
            tensors[name] = (entry, data[begin:end])
            weight_map[name] = shard.name
        write_safetensors(shard, tensors)
        shards.append(shard)
    index = {"metadata": {"total_size": len(data)}, "weight_map": dict(sorted(weight_map.items()))}
    (source.parent / f"{stem}.safetensors.index.json").write_text(json.dumps(index, indent=2))
    source.unlink()
    return shards


@pytest.fixture
def tiny_copy(shared_models_dir: Path, tmp_path: Path):
    """A fresh copy of a tiny model to damage: ``tiny_copy("tiny-z-image")``."""

    def make(model_id: str = "tiny-z-image") -> Path:
        dest = tmp_path / f"copy-{model_id}"
        shutil.copytree(shared_models_dir / model_id, dest)
        return dest

    return make


@pytest.fixture(scope="session")
def hub_repo_dir(shared_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake hub serves: tiny Z-Image, transformer sharded, plus files a pipeline never needs."""
    folder = tmp_path_factory.mktemp("hub-repo") / "tiny-z-image"
    shutil.copytree(shared_models_dir / "tiny-z-image", folder)
    transformer = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    junk = {
        "README.md": b"# tiny z-image\n",
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "assets/teaser.png": b"\x89PNG not really" * 100,
        "transformer/diffusion_pytorch_model.fp16.safetensors": transformer.read_bytes(),
        "text_encoder/pytorch_model.bin": b"pickle weights are never fetched" * 50,
        "text_encoder/onnx/model.onnx": b"onnx" * 100,
    }
    shard_safetensors(transformer, "diffusion_pytorch_model", 2)
    for path, data in junk.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    return folder


JUNK_FILES = (
    "README.md",
    ".gitattributes",
    "assets/teaser.png",
    "transformer/diffusion_pytorch_model.fp16.safetensors",
    "text_encoder/pytorch_model.bin",
    "text_encoder/onnx/model.onnx",
)


@pytest.fixture
def fake_hub(hub_repo_dir: Path) -> Iterator[FakeHub]:
    hub = FakeHub()
    hub.add_repo(TEST_REPO, hub_repo_dir)
    hub.start()
    yield hub
    hub.close()


@pytest.fixture
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let this process's huggingface_hub reach the (local) hub: the test session runs it offline."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub_cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


@pytest.fixture
def mirror_settings(app_home: Path, shared_models_dir: Path):
    """Settings whose z-image-turbo comes from the fake hub's repository (a mirror, as users set it)."""
    from imagestudio.config import load_settings

    path = app_home / "config.yaml"
    path.write_text(
        f"models:\n  z-image-turbo:\n    repo: {TEST_REPO}\n"
        f"storage:\n  models_dir: {app_home / 'models'}\n  outputs_dir: {app_home / 'outputs'}\n",
        encoding="utf-8",
    )
    return load_settings(path)


def hed_checkpoint(tmp_path: Path, **replace) -> bytes:
    """A checkpoint laid out as the published ControlNetHED.pth (torch.save of the fp16 tensors), tiny."""
    import torch

    from imagestudio.models import hed

    torch.manual_seed(2)
    state = {name: t.half() for name, t in hed.build_network(hed.TINY_WIDTHS).state_dict().items()}
    torch.save({**state, **replace}, tmp_path / "checkpoint.pth")
    return (tmp_path / "checkpoint.pth").read_bytes()
