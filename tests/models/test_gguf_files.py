"""Bad GGUF files are refused in one line naming the file and what would work, before any weight loads.

Every file here is written in the test: a Qwen file with ComfyUI's prefix, a tensor type diffusers cannot
read, an unknown type number, a cut-short download, a ComfyUI "scaled fp8" safetensors file.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from imagestudio.engine.loader import load_pipeline
from imagestudio.errors import ModelNotAvailable
from imagestudio.models.tiny_variants import COMFY_PREFIX, write_gguf
from imagestudio.models.variants import variant_files
from imagestudio.registry import MODELS


def _transformer_state(settings, model_id: str):
    from safetensors.torch import load_file

    folder = settings.models_dir / model_id / "transformer"
    return load_file(next(folder.glob("*.safetensors")))


def _configured(config_file: Path, model_id: str, variant: str, path: Path):
    from imagestudio.config import load_settings

    config_file.write_text(
        config_file.read_text(encoding="utf-8")
        + f"models:\n  {model_id}:\n    weights_paths: {{{variant}: {path}}}\n",
        encoding="utf-8",
    )
    return load_settings(config_file)


def _refused(settings, model_id: str, variant: str) -> str:
    """The one-line refusal of loading ``variant``; nothing may be loaded (no pipeline object is made)."""
    import gc

    import torch

    gc.collect()
    before = sum(1 for o in gc.get_objects() if isinstance(o, torch.nn.Module))
    with pytest.raises(ModelNotAvailable) as caught:
        load_pipeline(MODELS[model_id], settings, weights=variant)
    message = str(caught.value)
    assert "\n" not in message
    del caught
    gc.collect()
    assert sum(1 for o in gc.get_objects() if isinstance(o, torch.nn.Module)) <= before
    return message


def test_a_prefixed_qwen_file_is_refused_by_its_names(config_file: Path, settings, tmp_path: Path) -> None:
    state = _transformer_state(settings, "tiny-qwen-image-edit")
    path = write_gguf(
        tmp_path / "prefixed.gguf", {COMFY_PREFIX + k: v for k, v in state.items()}, "Q8_0", "qwen_image"
    )
    message = _refused(
        _configured(config_file, "tiny-qwen-image-edit", "gguf-q8_0", path),
        "tiny-qwen-image-edit",
        "gguf-q8_0",
    )
    assert str(path) in message
    assert "tensor names do not fit tiny-qwen-image-edit" in message
    assert "'model.diffusion_model." in message
    assert "diffusers' tensor names" in message  # what would work


def test_a_tensor_type_diffusers_cannot_read_is_refused(config_file: Path, settings, tmp_path: Path) -> None:
    import gguf
    import numpy as np

    state = _transformer_state(settings, "tiny-z-image")
    path = tmp_path / "iq.gguf"
    writer = gguf.GGUFWriter(str(path), "lumina2")
    for name, tensor in state.items():
        writer.add_tensor(name, tensor.float().numpy())
    # One extra tensor in TQ1_0 (a ternary type the gguf package knows and diffusers does not dequantize).
    kind = gguf.GGMLQuantizationType.TQ1_0
    _block, size = gguf.GGML_QUANT_SIZES[kind]
    writer.add_tensor("extra.weight", np.zeros((1, size), dtype=np.uint8), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    message = _refused(
        _configured(config_file, "tiny-z-image", "gguf-q4_0", path), "tiny-z-image", "gguf-q4_0"
    )
    assert str(path) in message and "TQ1_0" in message and "cannot dequantize" in message


def _tensor_type_offset(path: Path) -> int:
    """Byte offset of the first tensor's type field in a GGUF v3 file with one metadata key."""
    data = path.read_bytes()
    # magic, version, tensor count, kv count
    offset = 4 + 4 + 8 + 8
    key_len = struct.unpack_from("<Q", data, offset)[0]
    offset += 8 + key_len + 4  # key, value type (string)
    value_len = struct.unpack_from("<Q", data, offset)[0]
    offset += 8 + value_len
    name_len = struct.unpack_from("<Q", data, offset)[0]
    offset += 8 + name_len
    dims = struct.unpack_from("<I", data, offset)[0]
    return offset + 4 + 8 * dims


def test_an_unknown_tensor_type_number_is_refused(config_file: Path, settings, tmp_path: Path) -> None:
    state = _transformer_state(settings, "tiny-z-image")
    path = write_gguf(tmp_path / "unknown.gguf", state, "Q8_0", "lumina2")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, _tensor_type_offset(path), 250)
    path.write_bytes(bytes(data))
    message = _refused(
        _configured(config_file, "tiny-z-image", "gguf-q8_0", path), "tiny-z-image", "gguf-q8_0"
    )
    assert str(path) in message and "tensor type" in message and "250" in message


def test_a_cut_short_file_is_refused(config_file: Path, settings, tmp_path: Path) -> None:
    files = variant_files(MODELS["tiny-z-image"], "gguf-q4_0", settings)
    assert files is not None and files.gguf_file is not None
    whole = files.gguf_file.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    message = _refused(
        _configured(config_file, "tiny-z-image", "gguf-q4_0", path), "tiny-z-image", "gguf-q4_0"
    )
    assert str(path) in message and "cut short" in message and "download it again" in message


def test_a_comfyui_scaled_fp8_file_is_refused(config_file: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    weight = torch.randn(32, 32).to(torch.float8_e4m3fn)
    path = tmp_path / "qwen_image_edit_2511_fp8_scaled.safetensors"
    save_file(
        {
            "model.diffusion_model.img_in.weight": weight,
            "model.diffusion_model.img_in.scale_weight": torch.tensor([0.01]),
            "scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn),
        },
        str(path),
    )
    settings = _configured(config_file, "tiny-qwen-image-edit", "gguf-q8_0", path)
    message = _refused(settings, "tiny-qwen-image-edit", "gguf-q8_0")
    assert (
        str(path) in message and "scaled fp8" in message and "GGUF file or the sdnq-int8 variant" in message
    )


def test_a_file_that_is_not_gguf_is_refused(config_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text(json.dumps({"not": "weights"}), encoding="utf-8")
    message = _refused(
        _configured(config_file, "tiny-z-image", "gguf-q8_0", path), "tiny-z-image", "gguf-q8_0"
    )
    assert str(path) in message and "not a GGUF file" in message


@pytest.mark.parametrize(("package", "variant"), [("gguf", "gguf-q8_0"), ("sdnq", "sdnq-int8")])
def test_a_missing_package_is_named_with_its_install_command(
    settings, monkeypatch: pytest.MonkeyPatch, package: str, variant: str
) -> None:
    assert variant_files(MODELS["tiny-z-image"], variant, settings) is not None  # built while it can be
    # As if the package were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, package, None)
    message = _refused(settings, "tiny-z-image", variant)
    assert f"needs the {package} package" in message and f"pip install {package}" in message
