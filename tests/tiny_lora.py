"""Small LoRAs for the tiny models, made locally with peft (for tests, CI and offline demos).

A LoRA here is what a trainer would produce: peft adapters on the transformer's attention projections,
exported with ``get_peft_model_state_dict`` and written in diffusers' LoRA format by the pipeline class's
own ``save_lora_weights``. Its weights are random (like the tiny models'), so it changes the output
visibly and means nothing.
"""

from __future__ import annotations

from pathlib import Path

from imagestudio.engine.loras import DIFFUSERS_LORA_FILE

#: The attention projections both tiny transformers (Z-Image and Qwen-Image) name alike.
TARGET_MODULES = ("to_q", "to_k", "to_v")

_PIPELINES = {
    "z-image": ("ZImagePipeline", "ZImageTransformer2DModel"),
    "qwen-image-edit": ("QwenImageEditPlusPipeline", "QwenImageTransformer2DModel"),
}


def build_tiny_lora(model_dir: Path, family: str, dest: Path, *, seed: int = 0, rank: int = 4) -> Path:
    """Write a LoRA for the tiny model in ``model_dir`` (``family`` as in the registry) into ``dest``.

    Returns the ``.safetensors`` file. The adapter starts from random A *and* B matrices
    (``init_lora_weights=False``; a trainer's zero-initialised B would change nothing).
    """
    import diffusers
    import torch
    from peft import LoraConfig, get_peft_model_state_dict

    try:
        pipeline_name, transformer_name = _PIPELINES[family]
    except KeyError:
        raise ValueError(
            f"no tiny LoRA recipe for family {family!r}; known: {', '.join(_PIPELINES)}"
        ) from None
    transformer = getattr(diffusers, transformer_name).from_pretrained(Path(model_dir) / "transformer")
    torch.manual_seed(seed)
    transformer.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=list(TARGET_MODULES), init_lora_weights=False)
    )
    layers = get_peft_model_state_dict(transformer)
    dest = Path(dest)
    getattr(diffusers, pipeline_name).save_lora_weights(dest, transformer_lora_layers=layers)
    return dest / DIFFUSERS_LORA_FILE
