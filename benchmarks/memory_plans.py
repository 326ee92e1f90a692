"""Measure memory plans for real: a plan applied to a full-size random-weight pipeline, run and timed.

For the GPU benchmarks (``docs/memory.md``, ``docs/benchmarks.md``): no download is needed. The pipeline
comes from :func:`imagestudio.models.random_weights.random_pipeline` at the real configs that ship with
the package, its tokenizer from the tiny offline model's folder. Random weights produce noise images, but
memory and time per step are those of the real model.

Typical use on a CUDA machine (one fresh pipeline per plan: offload hooks are not undone here)::

    pipe = random_pipeline(spec, component_configs(spec), tiny_folder, device="cuda")
    plan = MemoryPlanner(settings, hardware=simulate_hardware(probe_hardware(), 16)).plan(spec)
    result = measure_plan(pipe, plan, "cuda", vram_limit_gb=16)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from imagestudio.registry import get_model

if TYPE_CHECKING:
    from imagestudio.memory.plan import MemoryPlan

GIB = 1024**3


def _call_kwargs(family: str, plan: MemoryPlan) -> dict[str, Any]:
    workload = plan.workload
    kwargs: dict[str, Any] = {
        "prompt": "a red fox in the snow",
        "width": workload.width,
        "height": workload.height,
        "output_type": "np",
    }
    if family == "qwen-image-edit":
        from PIL import Image

        side = int(workload.input_area**0.5) or 1024
        kwargs["image"] = [Image.new("RGB", (side, side), (120, 90, 60))] * max(1, workload.input_images)
        kwargs["negative_prompt"] = " "
        kwargs["true_cfg_scale"] = 4.0 if workload.cfg else 1.0
    else:
        kwargs["guidance_scale"] = 0.0
    return kwargs


def measure_plan(
    pipe: Any,
    plan: MemoryPlan,
    device: str,
    *,
    steps: int | None = None,
    vram_limit_gb: float | None = None,
    warmup_steps: int = 1,
) -> dict[str, Any]:
    """Apply ``plan`` to a freshly built ``pipe``, run its workload and measure peak memory and time.

    ``vram_limit_gb`` emulates a smaller card with ``torch.cuda.set_per_process_memory_fraction``.
    Returns the peak allocated/reserved GiB (None off CUDA), seconds per denoising step (after a warm-up
    run) and the whole call's seconds, next to the plan's prediction.
    """
    import torch

    from imagestudio.memory.apply import apply_plan

    spec = get_model(plan.model_id)
    cuda = device.startswith("cuda")
    index = (torch.device(device).index or 0) if cuda else None
    if cuda and vram_limit_gb is not None:
        total = torch.cuda.get_device_properties(index).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, vram_limit_gb * GIB / total), index)
    if plan.profile != "full":
        pipe.to("cpu")
    apply_plan(pipe, plan, device, family=spec.family)
    kwargs = _call_kwargs(spec.family, plan)
    steps = steps or plan.workload.steps
    pipe(**kwargs, num_inference_steps=max(2, warmup_steps), generator=torch.Generator("cpu").manual_seed(0))
    if cuda:
        torch.cuda.synchronize(index)
        torch.cuda.reset_peak_memory_stats(index)
    stamps: list[float] = []

    def on_step(pipeline: Any, i: int, t: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        if cuda:
            torch.cuda.synchronize(index)
        stamps.append(time.perf_counter())
        return callback_kwargs

    started = time.perf_counter()
    pipe(
        **kwargs,
        num_inference_steps=steps,
        generator=torch.Generator("cpu").manual_seed(0),
        callback_on_step_end=on_step,
    )
    if cuda:
        torch.cuda.synchronize(index)
    total_s = time.perf_counter() - started
    per_step = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else None
    return {
        "model": plan.model_id,
        "plan": plan.describe(),
        "profile": plan.profile,
        "weights": plan.weights,
        "width": plan.workload.width,
        "height": plan.workload.height,
        "steps": steps,
        "vram_limit_gb": vram_limit_gb,
        "predicted_peak_vram_gb": plan.predicted_peak_vram_gb,
        "peak_allocated_gb": round(torch.cuda.max_memory_allocated(index) / GIB, 3) if cuda else None,
        "peak_reserved_gb": round(torch.cuda.max_memory_reserved(index) / GIB, 3) if cuda else None,
        "seconds_per_step": None if per_step is None else round(per_step, 4),
        "seconds_total": round(total_s, 3),
    }
