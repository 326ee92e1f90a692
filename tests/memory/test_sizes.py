"""Component sizes come from the real configs instantiated on the meta device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagestudio.memory.sizes import GROUP_BLOCK_MODULES, model_sizes
from imagestudio.models.configs import COMPONENTS
from imagestudio.models.random_weights import build_component
from imagestudio.registry import MODELS


@pytest.mark.parametrize(
    ("model_id", "transformer", "text_encoder"),
    [
        # The issue's figures for the transformers; the shared notes' for the text encoders.
        ("z-image-turbo", 6_154_908_736, 4_022_468_096),
        ("qwen-image-edit-2511", 20_430_401_088, 8_292_166_656),
    ],
)
def test_real_models_have_their_published_parameter_counts(
    model_id: str, transformer: int, text_encoder: int
) -> None:
    sizes = model_sizes(MODELS[model_id])
    assert sizes.transformer.params == transformer
    assert sizes.text_encoder.params == text_encoder
    # The VAEs: ~84 M (FLUX AutoencoderKL) and ~127 M (Wan-style AutoencoderKLQwenImage).
    assert 80e6 < sizes.vae.params < 130e6
    assert sizes.transformer.class_name == {"z-image-turbo": "ZImageTransformer2DModel"}.get(
        model_id, "QwenImageTransformer2DModel"
    )


def test_fp8_storage_halves_the_transformer_except_the_layers_diffusers_keeps() -> None:
    for model_id in ("z-image-turbo", "qwen-image-edit-2511"):
        tr = model_sizes(MODELS[model_id]).transformer
        # Layerwise casting skips norms, embedders and the like: well under 1 % of the weights.
        assert 0.99 * tr.params < tr.castable_params < tr.params
        assert tr.largest_castable_params <= tr.largest_leaf_params


def test_group_layout_splits_every_layer_list() -> None:
    z = model_sizes(MODELS["z-image-turbo"])
    # 30 + 2 + 2 Z-Image blocks: the largest group is one of ~34 similar blocks.
    assert 25 < z.transformer.params / z.transformer.largest_group_params < 40
    assert z.transformer.ungrouped_params < 0.01 * z.transformer.params
    q = model_sizes(MODELS["qwen-image-edit-2511"])
    assert 55 < q.transformer.params / q.transformer.largest_group_params < 65
    # Without block_modules the VL encoder would be one 8 B group; with them only the embeddings and
    # the LM head stay outside the layer lists.
    assert q.text_encoder.largest_group_params < 0.05 * q.text_encoder.params
    assert q.text_encoder.ungrouped_params < 0.15 * q.text_encoder.params


def test_the_group_layout_is_what_diffusers_group_offloading_builds(shared_models_dir: Path) -> None:
    """The VL encoder's decoder layers really become groups of their own under our block_modules."""
    import torch
    from diffusers.hooks import apply_group_offloading

    folder = shared_models_dir / "tiny-qwen-image-edit"
    config = json.loads((folder / "text_encoder" / "config.json").read_text(encoding="utf-8"))
    encoder = build_component("qwen-image-edit", "text_encoder", config, device="cpu")
    apply_group_offloading(
        encoder,
        onload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=1,
        block_modules=GROUP_BLOCK_MODULES[type(encoder).__name__],
    )
    layers = encoder.model.language_model.layers
    registry = layers[0]._diffusers_hook
    assert registry.get_hook("group_offloading") is not None
    assert registry.get_hook("group_offloading").group.modules == [layers[0]]


def test_tiny_models_are_sized_from_their_folder(shared_models_dir: Path) -> None:
    spec = MODELS["tiny-z-image"]
    with pytest.raises(ValueError, match="no stored configs"):
        model_sizes(spec)
    sizes = model_sizes(spec, shared_models_dir / "tiny-z-image")
    assert set(sizes.components) == set(COMPONENTS)
    assert 0 < sizes.total_params < 2_000_000
