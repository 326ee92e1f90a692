"""Out-of-memory recovery and the per-job memory log, through the studio on tiny pipelines.

The studio plans for a simulated 24 GB CUDA card but executes on the CPU (diffusers runs model and group
offload with a CPU onload device), so a step-down lands on a real, different placement. Weights are
pinned to bf16 in the config so that the step-down changes where weights live, not their values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagestudio.config import load_settings
from imagestudio.errors import OutOfMemory, is_out_of_memory
from imagestudio.hardware import Hardware, simulate_hardware
from imagestudio.memory.plan import Environment
from imagestudio.memory.planner import MemoryPlanner
from imagestudio.storage.metadata import read_metadata
from imagestudio.studio import Studio
from tests.engine.test_generate import tiny_request
from tests.helpers import pixels

GIB = 1024**3


request = tiny_request


@pytest.fixture
def card_studio(config_file: Path):
    config_file.write_text(config_file.read_text(encoding="utf-8") + "device:\n  weights: bf16\n")
    settings = load_settings(config_file)
    cpu = Hardware("cpu", "test", 0, 0, True, None, 64 * GIB, 64 * GIB, None)
    planner = MemoryPlanner(settings, simulate_hardware(cpu, 24), "cpu", Environment())
    studio = Studio(settings, planner=planner)
    yield studio
    studio.manager.unload()


def out_of_memory_on_calls(*calls: int):
    """A progress callback that raises torch's OOM error on the given step callbacks (1-based)."""
    import torch

    seen = {"n": 0}

    def on_step(progress: object) -> None:
        seen["n"] += 1
        if seen["n"] in calls:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    return on_step


def test_an_injected_oom_is_recovered_with_a_smaller_plan(card_studio: Studio, tmp_path: Path) -> None:
    reference = card_studio.generate(request(), out_dir=tmp_path).images[0]
    assert read_metadata(reference.path)["memory"]["profile"] == "full"

    result = card_studio.generate(request(), out_dir=tmp_path, on_step=out_of_memory_on_calls(1))
    [saved] = result.images
    memory = read_metadata(saved.path)["memory"]
    assert memory["recovered_from"] == ["full, bf16 weights"]
    assert memory["profile"] == "model_offload"
    assert result.as_json()["memory"] == {
        "plan": "model_offload, bf16 weights",
        "recovered_from": ["full, bf16 weights"],
    }
    assert np.array_equal(pixels(saved.path), pixels(reference.path))  # offload changes no pixel
    # The stepped-down placement stays loaded and serves the next job without another OOM.
    again = card_studio.generate(request(seed=8), out_dir=tmp_path)
    assert read_metadata(again.images[0].path)["memory"]["profile"] == "model_offload"


def test_when_the_smaller_plan_also_runs_out_the_error_says_what_to_change(
    card_studio: Studio, tmp_path: Path
) -> None:
    with pytest.raises(OutOfMemory) as info:
        card_studio.generate(request(), out_dir=tmp_path, on_step=out_of_memory_on_calls(1, 2, 3))
    message = info.value.message
    assert "ran out of memory" in message and "full, bf16 weights and then model_offload" in message
    assert "fp8" in message and "\n" not in message
    assert card_studio.manager.loaded_id is None
    # The studio is fine afterwards.
    assert card_studio.generate(request(), out_dir=tmp_path).images


def test_other_errors_are_not_retried(card_studio: Studio, tmp_path: Path) -> None:
    calls = {"n": 0}

    def broken(progress: object) -> None:
        calls["n"] += 1
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        card_studio.generate(request(), out_dir=tmp_path, on_step=broken)
    assert calls["n"] == 1


def test_out_of_memory_is_recognised_on_every_device() -> None:
    import torch

    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 17 GB)"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only runtime errors come from allocators


def test_every_image_records_the_jobs_memory(studio: Studio, tmp_path: Path) -> None:
    [saved] = studio.generate(request(), out_dir=tmp_path).images
    memory = read_metadata(saved.path)["memory"]
    assert memory["device"] == "cpu" and memory["profile"] == "full"
    assert memory["resident"] == {"transformer": "cpu", "text_encoder": "cpu", "vae": "cpu"}
    assert memory["ram_rss_gb"] > 0
    assert memory["peak_allocated_gb"] is None  # no accelerator: nothing to measure there
    assert memory["recovered_from"] == []
