"""Applying plans with diffusers' own switches: load-time quantization, VAE tiling, full-size benches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imagestudio.config import Settings, StorageSettings
from imagestudio.engine.loader import load_pipeline
from imagestudio.hardware import Hardware, simulate_hardware
from imagestudio.memory.activations import Workload
from imagestudio.memory.apply import quantization_config, set_vae_tiling
from imagestudio.memory.bench import measure_plan, random_pipeline
from imagestudio.memory.plan import Environment
from imagestudio.memory.planner import MemoryPlanner
from imagestudio.memory.sizes import COMPONENTS
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


@pytest.mark.parametrize(
    ("model_id", "tiny_id"),
    [("z-image-turbo", "tiny-z-image"), ("qwen-image-edit-2511", "tiny-qwen-image-edit")],
)
def test_random_pipelines_for_gpu_benchmarks_run_end_to_end(
    shared_models_dir: Path, monkeypatch: pytest.MonkeyPatch, model_id: str, tiny_id: str
) -> None:
    """The benchmark helpers, with the tiny configs standing in for the real ones so a CPU can run them."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit_module

    monkeypatch.setattr(edit_module, "VAE_IMAGE_SIZE", 64 * 64)
    monkeypatch.setattr(edit_module, "CONDITION_IMAGE_SIZE", 64 * 64)
    folder = shared_models_dir / tiny_id
    configs = {n: json.loads((folder / n / "config.json").read_text(encoding="utf-8")) for n in COMPONENTS}
    pipe = random_pipeline(model_id, folder, device="cpu", configs=configs)
    assert type(pipe).__name__ == MODELS[model_id].pipeline_class
    cpu = Hardware("cpu", "test", 0, 0, True, None, 64 * GIB, 64 * GIB, None)
    edit = MODELS[model_id].is_edit
    workload = Workload(64, 64, int(edit), 64 * 64 if edit else 0, 64 * 64 if edit else 0, False, 2)
    plan = MemoryPlanner(Settings(), simulate_hardware(cpu, 24), "cpu", Environment()).plan(
        MODELS[model_id], workload
    )
    result = measure_plan(pipe, plan, "cpu")
    assert result["model"] == model_id and result["profile"] == plan.profile
    assert result["peak_allocated_gb"] is None  # measured only on CUDA
    assert result["seconds_per_step"] is not None and result["predicted_peak_vram_gb"] > 1
