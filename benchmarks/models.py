"""A larger random-weight Z-Image pipeline (hundreds of MB) for the load-memory and switch benchmarks.

Built by the app's random-weight builder (:mod:`imagestudio.models.random_weights`) from the configs here.

The tiny models weigh ~2 MB, so their load is all fixed cost and no memory ratio means anything with
them. This one uses the same real classes as Z-Image-Turbo (``ZImageTransformer2DModel``, a ``Qwen3Model``
text encoder, the FLUX-style ``AutoencoderKL``) at a size where the weights dominate. ``large`` (the
benchmark's): a 1024-wide, 12-block transformer (head dim 128, RoPE axes [32, 48, 48] as the real
model) and a 1024-wide, 4-layer text encoder, ~214 M parameters, ~430 MB in bf16. ``small`` is the same
layout at a few MB, for the runner's own tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

MODEL_INDEX = "model_index.json"
_SEED = 4242

Size = Literal["large", "small"]

_TRANSFORMER_BASE: dict[str, Any] = {
    "all_patch_size": (2,),
    "all_f_patch_size": (1,),
    "in_channels": 16,
    "qk_norm": True,
    "axes_dims": [32, 48, 48],
    "axes_lens": [1536, 512, 512],
    "rope_theta": 256.0,
}
TRANSFORMER_CONFIGS: dict[str, dict[str, Any]] = {
    "large": {
        **_TRANSFORMER_BASE,
        "dim": 1024,
        "n_layers": 8,
        "n_refiner_layers": 2,
        "n_heads": 8,
        "n_kv_heads": 8,
        "cap_feat_dim": 1024,
    },
    "small": {
        **_TRANSFORMER_BASE,
        "dim": 256,
        "n_layers": 2,
        "n_refiner_layers": 1,
        "n_heads": 2,
        "n_kv_heads": 2,
        "cap_feat_dim": 256,
    },
}
TEXT_ENCODER_CONFIGS: dict[str, dict[str, Any]] = {
    "large": {
        "hidden_size": 1024,  # = the transformer's cap_feat_dim
        "intermediate_size": 3072,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 128,
        "max_position_embeddings": 1024,
    },
    "small": {
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 128,
        "max_position_embeddings": 1024,
    },
}


#: The tiny Z-Image's VAE layout (the real 8x downscale and latent statistics) with wider blocks.
VAE_BLOCK_OUT_CHANNELS = (32, 32, 64, 64)


def model_folder(models_dir: Path, size: Size, storage_dtype: str) -> Path:
    return Path(models_dir) / f"{size}-z-image-{storage_dtype}"


def build_z_image(dest: Path, size: Size = "large", storage_dtype: str = "bfloat16") -> Path:
    """Build the pipeline into ``dest`` with weights stored in ``storage_dtype``; return ``dest``.

    ``float32`` storage mirrors the real Z-Image-Turbo transformer, which the hub stores in float32 and
    the app loads in bfloat16 (the load then converts every tensor).
    """
    import torch

    from imagestudio.models.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(_SEED)
    # Built straight in the storage dtype: no second copy, no cast warnings.
    pipe = _build(tokenizer, size, getattr(torch, storage_dtype))
    pipe.save_pretrained(dest, safe_serialization=True)
    return dest


def _build(tokenizer: Any, size: Size, dtype: Any) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    from imagestudio.models.random_weights import random_component
    from imagestudio.models.tiny import tiny_z_image_configs

    configs: dict[str, dict[str, Any]] = {
        "transformer": {"_class_name": "ZImageTransformer2DModel", **TRANSFORMER_CONFIGS[size]},
        "text_encoder": {
            "vocab_size": len(tokenizer),
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
            "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
            "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "tie_word_embeddings": False,
            **TEXT_ENCODER_CONFIGS[size],
        },
        "vae": {**tiny_z_image_configs(tokenizer)["vae"], "block_out_channels": VAE_BLOCK_OUT_CHANNELS},
    }
    # Built in this order under the caller's seed (the weights depend on it).
    components = {
        name: random_component("z-image", name, configs[name], dtype=dtype)
        for name in ("transformer", "text_encoder", "vae")
    }
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False)
    return ZImagePipeline(scheduler=scheduler, tokenizer=tokenizer, **components)


def ensure_z_image(models_dir: Path, size: Size = "large", storage_dtype: str = "bfloat16") -> Path:
    """The pipeline's folder under ``models_dir``, built first unless complete (staging + rename)."""
    dest = model_folder(models_dir, size, storage_dtype)
    if (dest / MODEL_INDEX).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.building"
    staging.mkdir()
    try:
        build_z_image(staging, size, storage_dtype)
        staging.rename(dest)
    except OSError:
        if not (dest / MODEL_INDEX).is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def weights_bytes(folder: Path) -> int:
    """Bytes of every ``.safetensors`` file under ``folder`` (the weights a load has to bring into RAM)."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*.safetensors"))
