"""Measuring memory plans on full-size random-weight pipelines, run here at the tiny configs on a CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.memory_plans import measure_plan

from imagestudio.config import Settings
from imagestudio.hardware import Hardware, simulate_hardware
from imagestudio.memory.activations import Workload
from imagestudio.memory.plan import Environment
from imagestudio.memory.planner import MemoryPlanner
from imagestudio.models.configs import COMPONENTS
from imagestudio.models.random_weights import random_pipeline
from imagestudio.registry import MODELS

GIB = 1024**3


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
    pipe = random_pipeline(MODELS[model_id], configs, folder, device="cpu")
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
