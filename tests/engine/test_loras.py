"""LoRAs made locally with peft for the tiny models: they load, change the output, and leave no trace."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.engine.loras import resolve_lora
from imagestudio.errors import InvalidRequest, ModelNotAvailable
from imagestudio.job_requests import EditRequest, GenerateRequest
from imagestudio.lora_refs import LoraRef, parse_lora
from imagestudio.storage.inputs import InputLimits, read_input_image
from tests.tiny_lora import build_tiny_lora


@pytest.fixture(scope="module")
def loras(shared_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("loras")
    return {
        "z": build_tiny_lora(shared_models_dir / "tiny-z-image", "z-image", folder / "z"),
        "z2": build_tiny_lora(shared_models_dir / "tiny-z-image", "z-image", folder / "z2", seed=1),
        "qwen": build_tiny_lora(shared_models_dir / "tiny-qwen-image-edit", "qwen-image-edit", folder / "q"),
    }


def z_request(*lora_args: str) -> GenerateRequest:
    return GenerateRequest.build(
        model="tiny-z-image", prompt="a cat", width=64, height=48, steps=2, seed=7,
        loras=tuple(parse_lora(text) for text in lora_args),
    )  # fmt: skip


def run(studio, out: Path, request) -> np.ndarray:
    method = studio.edit if isinstance(request, EditRequest) else studio.generate
    [saved] = method(request, out_dir=out).images
    with Image.open(saved.path) as image:
        return np.asarray(image.convert("RGB"))


# --------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "source", "scale"),
    [
        ("style.safetensors", "style.safetensors", 1.0),
        ("style.safetensors:0.5", "style.safetensors", 0.5),
        ("owner/repo:-0.75", "owner/repo", -0.75),
        ("owner/repo/sub/file.safetensors:2", "owner/repo/sub/file.safetensors", 2.0),
        (r"C:\loras\x.safetensors", r"C:\loras\x.safetensors", 1.0),
        ("x.safetensors:strong", "x.safetensors:strong", 1.0),
    ],
)
def test_parse_lora(text: str, source: str, scale: float) -> None:
    assert parse_lora(text) == LoraRef(source=source, scale=scale)


@pytest.mark.parametrize(
    ("text", "fragment"), [(":0.5", "names no file"), ("x.safetensors:9", "outside -4.0..4.0")]
)
def test_parse_lora_refuses(text: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        parse_lora(text)


# ------------------------------------------------------------------------------------ resolving


def refusal(source: str, error: type[Exception] = InvalidRequest) -> str:
    with pytest.raises(error) as info:
        resolve_lora(LoraRef(source=source))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_pickle_and_other_files_are_refused(tmp_path: Path) -> None:
    for name in ("style.bin", "style.pt", "style.ckpt", "style.pth"):
        (tmp_path / name).write_bytes(b"\x80\x04")
        assert "is a pickle file; only .safetensors" in refusal(str(tmp_path / name))
    (tmp_path / "notes.txt").write_text("hi")
    assert "is not a .safetensors file" in refusal(str(tmp_path / "notes.txt"))
    assert "does not exist" in refusal(str(tmp_path / "missing.safetensors"))
    (tmp_path / "broken.safetensors").write_bytes(b"garbage" * 10)
    assert "is not a valid safetensors file" in refusal(str(tmp_path / "broken.safetensors"))


def test_a_model_weight_file_is_not_a_lora(shared_models_dir: Path) -> None:
    weights = next((shared_models_dir / "tiny-z-image" / "transformer").glob("*.safetensors"))
    assert "is not a LoRA" in refusal(str(weights))


def test_folders(tmp_path: Path, loras: dict[str, Path]) -> None:
    folder = tmp_path / "two"
    folder.mkdir()
    shutil.copy(loras["z"], folder / "a.safetensors")
    assert resolve_lora(LoraRef(source=str(folder))).path == folder / "a.safetensors"
    shutil.copy(loras["z2"], folder / "b.safetensors")
    assert "holds several .safetensors files (a.safetensors, b.safetensors)" in refusal(str(folder))
    shutil.copy(loras["z"], folder / "pytorch_lora_weights.safetensors")
    assert resolve_lora(LoraRef(source=str(folder))).path.name == "pytorch_lora_weights.safetensors"
    empty = tmp_path / "pickles"
    empty.mkdir()
    (empty / "x.bin").write_bytes(b"")
    assert "only pickle files: x.bin" in refusal(str(empty))


def test_missing_hub_lora_fails_at_once_offline() -> None:
    message = refusal("someone/some-lora/style.safetensors", ModelNotAvailable)
    assert "is not on this machine" in message
    assert "Get it with: hf download someone/some-lora style.safetensors" in message


def test_hub_lora_in_the_local_cache_is_found(
    tmp_path: Path, loras: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--someone--tiny-style"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    shutil.copy(loras["z"], repo / "snapshots" / commit / "style.safetensors")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    by_file = resolve_lora(LoraRef(source="someone/tiny-style/style.safetensors"))
    by_repo = resolve_lora(LoraRef(source="someone/tiny-style"))
    assert by_file.path == by_repo.path == repo / "snapshots" / commit / "style.safetensors"


# ------------------------------------------------------------------------------------- applying


def test_z_image_lora_changes_the_image_and_unloads_cleanly(
    studio, loras: dict[str, Path], tmp_path: Path
) -> None:
    before = run(studio, tmp_path, z_request())
    with_lora = run(studio, tmp_path, z_request(str(loras["z"])))
    assert not np.array_equal(before, with_lora)
    with studio.manager.acquire("tiny-z-image") as loaded:
        assert loaded.lora_key != ()
        assert loaded.pipe.get_list_adapters() == {"transformer": ["imagestudio_0"]}
    after = run(studio, tmp_path, z_request())
    assert np.array_equal(before, after)  # bit-identical: the original layers are back
    with studio.manager.acquire("tiny-z-image") as loaded:
        assert loaded.lora_key == ()
        assert loaded.pipe.get_list_adapters() == {}


# peft warns whenever a second adapter joins the first, which is what a LoRA set is.
@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")
def test_scale_and_sets(studio, loras: dict[str, Path], tmp_path: Path) -> None:
    half = f"{loras['z']}:0.5"
    full = run(studio, tmp_path, z_request(str(loras["z"])))
    half_after_full = run(studio, tmp_path, z_request(half))  # same file: only the scale changes
    assert not np.array_equal(full, half_after_full)
    studio.manager.unload()
    assert np.array_equal(half_after_full, run(studio, tmp_path, z_request(half)))  # = a fresh load
    both = run(studio, tmp_path, z_request(half, str(loras["z2"])))
    assert not np.array_equal(both, half_after_full)
    with studio.manager.acquire("tiny-z-image") as loaded:
        assert loaded.pipe.get_list_adapters() == {"transformer": ["imagestudio_0", "imagestudio_1"]}


def test_a_lora_for_another_model_is_refused_and_leaves_the_pipeline_clean(
    studio, loras: dict[str, Path], tmp_path: Path
) -> None:
    before = run(studio, tmp_path, z_request())
    with pytest.raises(InvalidRequest, match="does not fit this model: 6 of its 6 layers") as info:
        run(studio, tmp_path, z_request(str(loras["z"]), str(loras["qwen"])))
    assert info.value.param == "lora"
    with studio.manager.acquire("tiny-z-image") as loaded:
        assert loaded.pipe.get_list_adapters() == {}
        assert loaded.lora_key == ()
    assert np.array_equal(before, run(studio, tmp_path, z_request()))


def test_qwen_edit_lora_changes_the_edit_and_unloads_cleanly(
    studio, loras: dict[str, Path], tmp_path: Path
) -> None:
    image = read_input_image(_png(), InputLimits(10**7, 10**7), name="a.png")

    def edit(*lora_args: str) -> EditRequest:
        return EditRequest.build(
            model="tiny-qwen-image-edit", prompt="swap", images=(image,), width=64, height=64, steps=2,
            seed=3, loras=tuple(parse_lora(text) for text in lora_args),
        )  # fmt: skip

    before = run(studio, tmp_path, edit())
    with_lora = run(studio, tmp_path, edit(str(loras["qwen"])))
    assert not np.array_equal(before, with_lora)
    assert np.array_equal(before, run(studio, tmp_path, edit()))


def test_missing_lightning_lora_fails_before_the_model_loads(studio, tmp_path: Path) -> None:
    # The real edit model is not here either: the LoRA check must come first to give this error.
    image = read_input_image(_png(), InputLimits(10**7, 10**7), name="a.png")
    request = EditRequest.build(model="qwen-image-edit-2511", prompt="x", images=(image,), lightning=4)
    with pytest.raises(ModelNotAvailable) as info:
        studio.edit(request, out_dir=tmp_path)
    assert "hf download lightx2v/Qwen-Image-Edit-2511-Lightning Qwen-Image-Edit-2511-Lightning-4steps" in str(
        info.value
    )
    assert studio.manager.loaded_id is None


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()
