"""Applying plans with diffusers' own switches: load-time quantization, VAE tiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagestudio.config import Settings, StorageSettings
from imagestudio.engine.loader import load_pipeline
from imagestudio.hardware import Hardware, simulate_hardware
from imagestudio.memory.apply import quantization_config, set_vae_tiling
from imagestudio.memory.plan import Environment
from imagestudio.memory.planner import MemoryPlanner
from imagestudio.registry import MODELS

GIB = 1024**3


def test_quantized_weights_reach_from_pretrained(shared_models_dir: Path) -> None:
    """An NF4 plan's config is handed to diffusers at load time (here it stops at the missing package)."""
    settings = Settings(storage=StorageSettings(models_dir=shared_models_dir))
    cpu = Hardware("cpu", "test", 0, 0, True, None, 64 * GIB, 64 * GIB, None)
    settings.device.weights = "nf4"
    planner = MemoryPlanner(
        settings, simulate_hardware(cpu, 8), "cuda", Environment(quantization=frozenset({"nf4"}))
    )
    plan = planner.plan(MODELS["tiny-z-image"])
    assert plan.weights == "nf4"
    config = quantization_config(plan)
    assert config is not None and config.components_to_quantize == ["transformer"]
    with pytest.raises(Exception, match="bitsandbytes"):
        load_pipeline(MODELS["tiny-z-image"], settings, quantization_config=config)


def test_vae_tiling_is_a_switch_on_the_loaded_pipeline(shared_models_dir: Path) -> None:
    import torch

    pipe = load_pipeline(
        MODELS["tiny-z-image"], Settings(storage=StorageSettings(models_dir=shared_models_dir))
    )

    def render(seed: int = 1) -> np.ndarray:
        generator = torch.Generator("cpu").manual_seed(seed)
        kwargs = {"width": 96, "height": 96, "num_inference_steps": 1, "guidance_scale": 0.0}
        return pipe("кот", **kwargs, generator=generator, output_type="np").images[0]

    plain = render()
    set_vae_tiling(pipe, True, tile_pixels=64)
    assert pipe.vae.use_tiling and pipe.vae.tile_sample_min_size == 64 and pipe.vae.tile_latent_min_size == 8
    tiled = render()
    set_vae_tiling(pipe, False)
    assert not pipe.vae.use_tiling
    assert np.array_equal(render(), plain)
    seed_gap = np.abs(render(2) - plain).mean()
    tile_gap = np.abs(tiled - plain).mean()
    assert 0 < tile_gap < 0.5 * seed_gap  # tiles blend at their seams: close, not identical
