"""The activation formula against the real model code, traced on the meta device."""

from __future__ import annotations

import pytest

from imagestudio.memory.activations import ACTIVATIONS
from imagestudio.memory.trace import peak_tensor_bytes
from imagestudio.models.configs import component_configs
from imagestudio.models.random_weights import build_component
from imagestudio.registry import MODELS


def test_the_tracer_counts_live_tensors_and_not_their_inputs() -> None:
    import torch

    x = torch.empty(1000, 1000, device="meta")  # 4 MB, an input: not counted

    def two_alive() -> object:
        y = x * 2  # 4 MB
        return y + 1  # another 4 MB while y is alive

    def one_at_a_time() -> object:
        return (x * 2).sum()

    assert peak_tensor_bytes(two_alive, keep=[x]) == 8_000_000
    assert peak_tensor_bytes(one_at_a_time, keep=[x]) == 4_000_000 + 4  # x*2, then its float32 sum


def test_attention_is_counted_as_memory_efficient_kernels_do() -> None:
    import torch
    import torch.nn.functional as F

    q = torch.empty(1, 8, 4096, 64, device="meta", dtype=torch.bfloat16)
    peak = peak_tensor_bytes(lambda: F.scaled_dot_product_attention(q, q, q), keep=[q])
    # output (4 MB) + float32 log-sum-exp (128 KB); never the 8×4096² score matrix (268 MB).
    assert peak == 8 * 4096 * 64 * 2 + 8 * 4096 * 4


def _keep(module, *tensors):
    return [*module.parameters(), *module.buffers(), *tensors]


@pytest.fixture(scope="module")
def z_components():
    configs = component_configs(MODELS["z-image-turbo"])
    return {name: build_component("z-image", name, configs[name]) for name in ("transformer", "vae")}


@pytest.fixture(scope="module")
def q_components():
    configs = component_configs(MODELS["qwen-image-edit-2511"])
    return {name: build_component("qwen-image-edit", name, configs[name]) for name in ("transformer", "vae")}


@pytest.mark.parametrize(("width", "height", "caption"), [(512, 512, 512), (1024, 768, 128)])
def test_z_image_transformer_bytes_per_token(z_components, width: int, height: int, caption: int) -> None:
    import torch

    model = z_components["transformer"]
    latents = torch.empty(16, 1, height // 8, width // 8, device="meta", dtype=torch.bfloat16)
    caption_feats = torch.empty(caption, 2560, device="meta", dtype=torch.bfloat16)
    t = torch.zeros(1, device="meta")
    traced = peak_tensor_bytes(
        lambda: model([latents], t, [caption_feats]), _keep(model, latents, caption_feats, t)
    )
    tokens = (width // 16) * (height // 16) + caption
    predicted = ACTIVATIONS["z-image"].transformer_bytes_per_token * tokens
    assert traced == pytest.approx(predicted, rel=0.02)


def test_qwen_transformer_bytes_per_token_with_references(q_components) -> None:
    import torch

    model = q_components["transformer"]
    out_tokens, refs, text = (512 // 16) ** 2, 2, 300
    seq = out_tokens + refs * 4096
    hidden = torch.empty(1, seq, 64, device="meta", dtype=torch.bfloat16)
    prompt = torch.empty(1, text, 3584, device="meta", dtype=torch.bfloat16)
    mask = torch.ones(1, text, device="meta", dtype=torch.bool)
    t = torch.ones(1, device="meta", dtype=torch.bfloat16)
    shapes = [[(1, 32, 32)] + [(1, 64, 64)] * refs]

    def forward() -> object:
        return model(
            hidden_states=hidden,
            encoder_hidden_states=prompt,
            encoder_hidden_states_mask=mask,
            timestep=t,
            img_shapes=shapes,
            return_dict=False,
        )

    traced = peak_tensor_bytes(forward, _keep(model, hidden, prompt, mask, t))
    predicted = ACTIVATIONS["qwen-image-edit"].transformer_bytes_per_token * (seq + text)
    assert traced == pytest.approx(predicted, rel=0.02)


def test_vae_bytes_per_pixel(z_components, q_components) -> None:
    import torch

    for family, vae, latent in (
        ("z-image", z_components["vae"], (1, 16, 64, 96)),
        ("qwen-image-edit", q_components["vae"], (1, 16, 1, 64, 96)),
    ):
        z = torch.empty(latent, device="meta", dtype=torch.bfloat16)
        pixels = 512 * 768
        decoded = peak_tensor_bytes(lambda vae=vae, z=z: vae.decode(z), _keep(vae, z))
        assert decoded == pytest.approx(ACTIVATIONS[family].vae_decode_bytes_per_pixel * pixels, rel=0.02)
        image_shape = (1, 3, 512, 768) if family == "z-image" else (1, 3, 1, 512, 768)
        x = torch.empty(image_shape, device="meta", dtype=torch.bfloat16)
        encoded = peak_tensor_bytes(lambda vae=vae, x=x: vae.encode(x), _keep(vae, x))
        assert encoded == pytest.approx(ACTIVATIONS[family].vae_encode_bytes_per_pixel * pixels, rel=0.02)


def test_text_encoder_bytes_per_token() -> None:
    import torch

    for family, model_id in (("z-image", "z-image-turbo"), ("qwen-image-edit", "qwen-image-edit-2511")):
        config = component_configs(MODELS[model_id])["text_encoder"]
        encoder = build_component(family, "text_encoder", config)
        ids = torch.zeros(1, 256, dtype=torch.long, device="meta")
        traced = peak_tensor_bytes(
            lambda encoder=encoder, ids=ids: encoder(input_ids=ids, output_hidden_states=True),
            _keep(encoder, ids),
        )
        assert traced == pytest.approx(ACTIVATIONS[family].text_encoder_bytes_per_token * 256, rel=0.02)
