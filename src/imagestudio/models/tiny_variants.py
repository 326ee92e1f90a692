"""The tiny models' quantized variants, written offline from the tiny models' own weights.

They are stored exactly as the published files are, so that loading them runs the same code as loading
the real ones:

* GGUF (``gguf-q8_0``, ``gguf-q4_0``): one ``.gguf`` transformer file written with the ``gguf`` package
  (``gguf.quants.quantize``; Q8_0 and Q4_0 are the types it can write — K-quants are download-only). The
  tensor names follow the real files: Z-Image's original checkpoint names with the fused ``qkv``
  projection, the Q8_0 file with ComfyUI's ``model.diffusion_model.`` prefix and the Q4_0 file without
  it (both layouts appear in published Z-Image files); Qwen-Image's files use diffusers' own names.
  Two-dimensional ``.weight`` matrices whose rows fill whole 32-value blocks are quantized; the rest
  (norms, biases, Z-Image's pad tokens, odd shapes) stays float32, as the converters keep them too.
* SDNQ (``sdnq-int8``, ``sdnq-uint4``): a whole pipeline folder whose transformer and text encoder were
  quantized with ``SDNQConfig`` and saved with ``save_pretrained``, as the published SDNQ repositories
  are. The tiny uint4 variant skips the SVD correction of the published ``uint4-svd-r32`` files: at
  hidden size 32 a rank-32 correction would be the whole matrix, and it takes minutes on two cores; the
  folder format and the loading code are the same.

Every build is deterministic (the inputs are the tiny models' byte-identical files) and atomic (written
beside its place and renamed into it), like :func:`imagestudio.models.tiny.ensure_tiny_model`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.models.files import MODEL_INDEX
from imagestudio.registry import ModelSpec, WeightVariant

if TYPE_CHECKING:
    import torch

    from imagestudio.config import Settings

GgufLayout = Literal["diffusers", "original", "prefixed"]

#: ComfyUI's prefix on every key of a checkpoint saved from its model object.
COMFY_PREFIX = "model.diffusion_model."
#: ``general.architecture`` the published conversions write (city96's ComfyUI-GGUF names).
GGUF_ARCH = {"z-image": "lumina2", "qwen-image-edit": "qwen_image"}
#: Values per quantization block of the types the ``gguf`` package writes.
GGUF_BLOCK = 32

#: diffusers name → Z-Image's original checkpoint name (the inverse of diffusers'
#: ``convert_z_image_transformer_checkpoint_to_diffusers``; q/k/v are fused separately).
_Z_IMAGE_ORIGINAL_NAMES = (
    ("all_final_layer.2-1.", "final_layer."),
    ("all_x_embedder.2-1.", "x_embedder."),
    (".attention.to_out.0.", ".attention.out."),
    (".attention.norm_k.", ".attention.k_norm."),
    (".attention.norm_q.", ".attention.q_norm."),
)


def tiny_gguf_layout(spec: ModelSpec, variant: WeightVariant) -> GgufLayout:
    """The key layout of a tiny GGUF variant's file (see the module docstring)."""
    if spec.family == "qwen-image-edit":
        return "diffusers"
    return "prefixed" if variant.quant_type == "Q8_0" else "original"


def z_image_original_names(
    state_dict: Mapping[str, torch.Tensor], prefix: str = ""
) -> dict[str, torch.Tensor]:
    """A diffusers Z-Image transformer state dict under the original checkpoint's names (fused ``qkv``)."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        if name.endswith((".attention.to_k.weight", ".attention.to_v.weight")):
            continue
        if name.endswith(".attention.to_q.weight"):
            stem = name.removesuffix(".attention.to_q.weight")
            tensor = torch.cat([state_dict[f"{stem}.attention.to_{p}.weight"] for p in "qkv"])
            name = f"{stem}.attention.qkv.weight"
        for new, old in _Z_IMAGE_ORIGINAL_NAMES:
            name = name.replace(new, old)
        out[prefix + name] = tensor
    return out


def gguf_tensors(
    state_dict: Mapping[str, torch.Tensor], family: str, layout: GgufLayout
) -> dict[str, torch.Tensor]:
    """The transformer's tensors under the names of a ``layout`` file of ``family``."""
    if layout == "diffusers":
        return dict(state_dict)
    if family != "z-image":
        raise ValueError(f"{family} GGUF files use diffusers names only")
    return z_image_original_names(state_dict, COMFY_PREFIX if layout == "prefixed" else "")


def write_gguf(path: Path, tensors: Mapping[str, torch.Tensor], quant_type: str, arch: str) -> Path:
    """Write ``tensors`` to a GGUF file: 2-D ``.weight`` matrices in ``quant_type`` where whole blocks fit
    (diffusers dequantizes only layer weights; a quantized pad token would be used as raw bytes), else F32."""
    import gguf

    qtype = gguf.GGMLQuantizationType[quant_type]
    writer = gguf.GGUFWriter(str(path), arch)
    for name, tensor in tensors.items():
        array = tensor.detach().to("cpu").float().numpy()
        if name.endswith(".weight") and array.ndim == 2 and array.shape[-1] % GGUF_BLOCK == 0:
            writer.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _transformer_state(base: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for file in sorted((base / "transformer").glob("*.safetensors")):
        state.update(load_file(file))
    return state


def build_tiny_gguf(base: Path, dest: Path, spec: ModelSpec, variant: WeightVariant) -> Path:
    """Write ``variant``'s GGUF file at ``dest`` from the tiny model folder ``base``."""
    layout = tiny_gguf_layout(spec, variant)
    tensors = gguf_tensors(_transformer_state(base), spec.family, layout)
    return write_gguf(dest, tensors, variant.quant_type or "Q8_0", GGUF_ARCH[spec.family])


def sdnq_config(weights_dtype: str, *, every_layer: bool = False) -> Any:
    """An ``SDNQConfig`` (``import sdnq`` also registers it with diffusers and transformers).

    ``every_layer`` quantizes layers of any size: SDNQ's defaults skip those under 16384 weights, which
    are all of a tiny model's.
    """
    from sdnq import SDNQConfig

    small = {"minimum_allowed_numel": 0, "minimum_allowed_channel_size": 0} if every_layer else {}
    return SDNQConfig(weights_dtype=weights_dtype, **small)


def build_tiny_sdnq(base: Path, dest: Path, variant: WeightVariant) -> Path:
    """An SDNQ pipeline folder at ``dest``: ``base`` with its transformer and text encoder quantized."""
    import diffusers
    import torch
    import transformers

    index = json.loads((base / MODEL_INDEX).read_text(encoding="utf-8"))
    config = sdnq_config(variant.quant_type or "int8", every_layer=True)
    shutil.copytree(
        base, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("transformer", "text_encoder")
    )
    transformer_class = getattr(diffusers, index["transformer"][1])
    transformer = transformer_class.from_pretrained(
        base / "transformer", torch_dtype=torch.bfloat16, quantization_config=config
    )
    transformer.save_pretrained(dest / "transformer", safe_serialization=True)
    encoder_class = getattr(transformers, index["text_encoder"][1])
    encoder = encoder_class.from_pretrained(
        base / "text_encoder", dtype=torch.bfloat16, quantization_config=config
    )
    encoder.save_pretrained(dest / "text_encoder", safe_serialization=True)
    return dest


def _is_complete(spec: ModelSpec, variant: WeightVariant, folder: Path) -> bool:
    from imagestudio.models.variants import gguf_filename

    marker = MODEL_INDEX if variant.format == "sdnq" else gguf_filename(spec, variant)
    return (folder / marker).is_file()


def ensure_tiny_variant(spec: ModelSpec, variant: WeightVariant, dest: Path, settings: Settings) -> Path:
    """Make sure the tiny ``variant`` of ``spec`` is built in the folder ``dest``; return ``dest``.

    Built from the tiny model (built first if needed) into a temporary folder beside ``dest`` and renamed
    into place in one step, so ``dest`` is absent or complete; a racing build's copy is discarded.
    """
    from imagestudio.models.quiet import quiet_library_progress
    from imagestudio.models.tiny import ensure_tiny_model
    from imagestudio.models.variants import gguf_filename

    if not spec.tiny or not variant.quantized:
        raise ValueError(f"{spec.id} {variant.name} is not a tiny quantized variant")
    dest = Path(dest)
    if _is_complete(spec, variant, dest):
        return dest
    base = ensure_tiny_model(spec.id, settings.models_dir / spec.id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.building"
    staging.mkdir()
    try:
        quiet_library_progress()
        if variant.format == "gguf":
            build_tiny_gguf(base, staging / gguf_filename(spec, variant), spec, variant)
        else:
            build_tiny_sdnq(base, staging, variant)
        if dest.is_dir() and not any(dest.iterdir()):
            with contextlib.suppress(OSError):
                dest.rmdir()
        try:
            staging.rename(dest)
        except OSError:
            if not _is_complete(spec, variant, dest):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
