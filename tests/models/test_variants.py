"""Where a weight variant's files are found, and the tiny variants written in the real files' layouts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from imagestudio.config import load_settings
from imagestudio.models.variants import (
    auto_variant,
    gguf_filename,
    locate_variant,
    requested_variant,
    variant_dir,
    variant_files,
)
from imagestudio.registry import get_model

COMMIT = "a" * 40


def _settings(tmp_path: Path, models: dict | None = None):
    return load_settings(
        overrides={
            "storage": {"models_dir": str(tmp_path / "models"), "outputs_dir": str(tmp_path / "out")},
            "models": models or {},
        }
    )


def _base_folder(folder: Path) -> Path:
    """A base model folder as a variant download leaves it: configs, no transformer weights."""
    (folder / "transformer").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}", encoding="utf-8")
    (folder / "transformer" / "config.json").write_text("{}", encoding="utf-8")
    return folder


def _hub_snapshot(cache_dir: Path, repo: str, files: dict[str, bytes]) -> Path:
    storage = cache_dir / ("models--" + repo.replace("/", "--"))
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT, encoding="utf-8")
    snapshot = storage / "snapshots" / COMMIT
    for name, data in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(data)
    return snapshot


def test_gguf_variant_found_in_the_hub_cache_with_the_local_base_folder(tmp_path: Path) -> None:
    spec = get_model("z-image-turbo")
    variant = spec.variant("gguf-q4_k_m")
    cache_dir = tmp_path / "hub"
    snapshot = _hub_snapshot(cache_dir, variant.repo_id or "", {variant.filename or "": b"GGUF"})
    base = _base_folder(tmp_path / "base")
    settings = _settings(tmp_path, {"z-image-turbo": {"path": str(base)}})

    files = variant_files(spec, variant, settings, cache_dir=cache_dir)

    assert files is not None
    assert files.gguf_file == snapshot / "z_image_turbo-Q4_K_M.gguf"
    assert files.source == "hub_cache"
    assert files.pipeline_dir == base
    assert files.transformer_config_dir == base / "transformer"
    assert files.transformer_files() == [files.gguf_file]


def test_gguf_variant_without_its_base_folder_is_not_usable(tmp_path: Path) -> None:
    spec = get_model("z-image-turbo")
    variant = spec.variant("gguf-q8_0")
    cache_dir = tmp_path / "hub"
    _hub_snapshot(cache_dir, variant.repo_id or "", {variant.filename or "": b"GGUF"})
    settings = _settings(tmp_path)

    assert locate_variant(spec, variant, settings, cache_dir)[1] == "hub_cache"
    assert variant_files(spec, variant, settings, cache_dir=cache_dir) is None


def test_configured_weights_path_wins_and_is_the_only_place_searched(tmp_path: Path) -> None:
    spec = get_model("qwen-image-edit-2511")
    variant = spec.variant("gguf-q3_k_m")
    own = tmp_path / "elsewhere" / "my-q3.gguf"
    own.parent.mkdir()
    own.write_bytes(b"GGUF")
    base = _base_folder(tmp_path / "base")
    settings = _settings(
        tmp_path, {"qwen-image-edit-2511": {"path": str(base), "weights_paths": {"gguf-q3_k_m": str(own)}}}
    )
    files = variant_files(spec, variant, settings, cache_dir=tmp_path / "hub")
    assert files is not None and files.gguf_file == own and files.source == "config"

    # A configured path that holds nothing hides a copy in the models folder.
    missing = _settings(
        tmp_path,
        {"qwen-image-edit-2511": {"path": str(base), "weights_paths": {"gguf-q3_k_m": str(tmp_path / "no")}}},
    )
    plain = variant_dir(spec, variant, missing) / (variant.filename or "")
    plain.parent.mkdir(parents=True)
    plain.write_bytes(b"GGUF")
    assert locate_variant(spec, variant, missing, tmp_path / "hub") == (None, "config")


def test_sdnq_variant_is_a_pipeline_folder_in_the_models_dir(tmp_path: Path) -> None:
    spec = get_model("qwen-image-edit-2511")
    variant = spec.variant("sdnq-uint4")
    settings = _settings(tmp_path)
    folder = variant_dir(spec, variant, settings)
    (folder / "transformer").mkdir(parents=True)
    assert variant_files(spec, variant, settings, cache_dir=tmp_path / "hub") is None  # no model_index.json
    (folder / "model_index.json").write_text("{}", encoding="utf-8")
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"x")

    files = variant_files(spec, variant, settings, cache_dir=tmp_path / "hub")

    assert files is not None and files.pipeline_dir == folder and files.gguf_file is None
    assert files.source == "models_dir"
    assert files.transformer_files() == [folder / "transformer" / "diffusion_pytorch_model.safetensors"]


def test_auto_is_bf16_when_present_else_the_first_present_variant(tmp_path: Path) -> None:
    spec = get_model("z-image-turbo")
    cache_dir_settings = _settings(tmp_path)
    # Nothing present: bf16, whose absence the loader reports with the download command.
    assert auto_variant(spec, cache_dir_settings).name == "bf16"
    sdnq = spec.variant("sdnq-int8")
    folder = variant_dir(spec, sdnq, cache_dir_settings)
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}", encoding="utf-8")
    assert auto_variant(spec, cache_dir_settings).name == "sdnq-int8"
    assert requested_variant(spec, cache_dir_settings, None).name == "sdnq-int8"
    assert requested_variant(spec, cache_dir_settings, "gguf-q6_k").name == "gguf-q6_k"


def test_config_weights_names_a_variant(tmp_path: Path) -> None:
    from imagestudio.errors import ConfigError

    settings = _settings(tmp_path, {"tiny-z-image": {"weights": "gguf-q4_0"}})
    assert requested_variant(get_model("tiny-z-image"), settings, None).name == "gguf-q4_0"
    with pytest.raises(ConfigError, match="gguf-q5_0"):
        _settings(tmp_path, {"tiny-z-image": {"weights": "gguf-q5_0"}})


# ------------------------------------------------------------------------------------------ tiny variants


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gguf_names(path: Path) -> list[str]:
    import gguf

    return [t.name for t in gguf.GGUFReader(str(path)).tensors]


@pytest.mark.parametrize(
    ("model_id", "variant", "first_key"),
    [
        ("tiny-z-image", "gguf-q8_0", "model.diffusion_model."),  # ComfyUI-prefixed original names
        ("tiny-z-image", "gguf-q4_0", "layers.0.attention.qkv.weight"),  # original, fused qkv
        ("tiny-qwen-image-edit", "gguf-q4_0", "transformer_blocks.0.attn.to_q.weight"),  # diffusers
    ],
)
def test_tiny_gguf_files_use_the_real_layouts_and_load_quantized(
    settings, model_id: str, variant: str, first_key: str
) -> None:
    import diffusers
    import gguf
    import torch
    from diffusers import GGUFQuantizationConfig
    from diffusers.quantizers.gguf.utils import GGUFParameter

    spec = get_model(model_id)
    files = variant_files(spec, variant, settings)
    assert files is not None and files.gguf_file is not None
    assert files.gguf_file.name == gguf_filename(spec, spec.variant(variant))
    names = _gguf_names(files.gguf_file)
    assert any(first_key in n for n in names)
    if model_id == "tiny-z-image":
        assert not any(".attention.to_q." in n for n in names)
    types = {t.tensor_type for t in gguf.GGUFReader(str(files.gguf_file)).tensors}
    assert gguf.GGMLQuantizationType[spec.variant(variant).quant_type or ""] in types

    index = json.loads((files.pipeline_dir / "model_index.json").read_text(encoding="utf-8"))
    model_class = getattr(diffusers, index["transformer"][1])
    model = model_class.from_single_file(
        str(files.gguf_file),
        quantization_config=GGUFQuantizationConfig(compute_dtype=torch.bfloat16),
        config=str(files.transformer_config_dir),
        torch_dtype=torch.bfloat16,
    )
    quantized = [p for p in model.parameters() if isinstance(p, GGUFParameter)]
    assert quantized, "no layer was loaded quantized"
    reference = model_class.from_pretrained(files.transformer_config_dir, torch_dtype=torch.float32)
    # Same weights, quantized: every loaded tensor is close to its source.
    for name, param in model.named_parameters():
        source = reference.state_dict()[name]
        if isinstance(param, GGUFParameter):
            from diffusers.quantizers.gguf.utils import dequantize_gguf_tensor

            param = dequantize_gguf_tensor(param)
        error = (param.float() - source).norm() / source.norm().clamp_min(1e-12)
        assert error < (0.02 if "8" in variant else 0.25), name


def test_the_other_z_image_layout_loads_too(settings, tmp_path: Path) -> None:
    """Both Z-Image layouts load, whichever one the tiny Q8_0/Q4_0 files happen to use."""
    import torch
    from diffusers import GGUFQuantizationConfig, ZImageTransformer2DModel
    from safetensors.torch import load_file

    from imagestudio.models.tiny_variants import gguf_tensors, write_gguf

    base = settings.models_dir / "tiny-z-image"
    state = load_file(next((base / "transformer").glob("*.safetensors")))
    outputs = []
    for layout in ("prefixed", "original"):
        path = write_gguf(
            tmp_path / f"{layout}.gguf", gguf_tensors(state, "z-image", layout), "Q8_0", "lumina2"
        )
        model = ZImageTransformer2DModel.from_single_file(
            str(path),
            quantization_config=GGUFQuantizationConfig(compute_dtype=torch.bfloat16),
            config=str(base / "transformer"),
            torch_dtype=torch.bfloat16,
        )
        outputs.append({k: v.clone() for k, v in model.state_dict().items()})
    assert outputs[0].keys() == outputs[1].keys()
    for key in outputs[0]:
        assert torch.equal(outputs[0][key], outputs[1][key]), key


def test_tiny_variants_build_byte_identical_files(settings, tmp_path: Path) -> None:
    from imagestudio.models.tiny_variants import ensure_tiny_variant

    spec = get_model("tiny-z-image")
    variant = spec.variant("gguf-q4_0")
    first = variant_files(spec, variant, settings)
    again = ensure_tiny_variant(spec, variant, tmp_path / "again", settings)
    assert first is not None and first.gguf_file is not None
    assert _sha(first.gguf_file) == _sha(again / first.gguf_file.name)


@pytest.mark.slow
def test_tiny_sdnq_variant_is_a_quantized_pipeline_folder(settings) -> None:
    import diffusers
    import sdnq  # noqa: F401  (registers the quantizer with transformers before the text encoder loads)
    import torch
    import transformers

    spec = get_model("tiny-qwen-image-edit")
    files = variant_files(spec, "sdnq-uint4", settings)
    assert files is not None and files.gguf_file is None
    for component in ("transformer", "text_encoder"):
        config = json.loads((files.pipeline_dir / component / "config.json").read_text(encoding="utf-8"))
        assert config["quantization_config"]["quant_method"] == "sdnq"
        assert config["quantization_config"]["weights_dtype"] == "uint4"
    transformer = diffusers.QwenImageTransformer2DModel.from_pretrained(
        files.pipeline_dir / "transformer", torch_dtype=torch.bfloat16
    )
    encoder = transformers.Qwen2_5_VLForConditionalGeneration.from_pretrained(
        files.pipeline_dir / "text_encoder", dtype=torch.bfloat16
    )
    layers = [type(m).__name__ for m in (*transformer.modules(), *encoder.modules())]
    assert "SDNQLinear" in layers
    # The vision tower is quantized too (the published folders quantize the whole encoder).
    assert any(type(m).__name__ == "SDNQLinear" for m in encoder.model.visual.modules())
