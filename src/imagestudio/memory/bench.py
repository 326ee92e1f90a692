"""Measure memory plans for real: full-size random-weight pipelines, built offline from the stored configs.

For the GPU benchmarks (``benchmarks/``, ``docs/benchmarks.md``): no download is needed. The three big
components are the real classes at the real configs with random weights; the tokenizer, processor and
scheduler come from the tiny offline model's folder (a real Qwen tokenizer over a small vocabulary: its
token ids all exist in the full-size embedding, and the VL encoder's special-token ids are taken from it).
Random weights produce noise images, but memory and time per step are those of the real model.

Typical use on a CUDA machine (one fresh pipeline per plan: offload hooks are not undone here)::

    pipe = random_pipeline("z-image-turbo", tiny_folder, device="cuda")
    plan = MemoryPlanner(settings, hardware=simulate_hardware(probe_hardware(), 16)).plan(spec)
    result = measure_plan(pipe, plan, "cuda", vram_limit_gb=16)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.memory.sizes import COMPONENTS, build_component, component_configs
from imagestudio.registry import get_model

if TYPE_CHECKING:
    from imagestudio.memory.plan import MemoryPlan

GIB = 1024**3

#: Text-encoder config keys that must name the tokenizer's own ids.
_TOKEN_ID_KEYS = (
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "image_token_id",
    "video_token_id",
    "vision_start_token_id",
    "vision_end_token_id",
    "vision_token_id",
)


def random_pipeline(
    model_id: str,
    tiny_folder: Path,
    *,
    device: str = "cuda",
    dtype: Any = None,
    seed: int = 0,
    configs: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """``model_id``'s pipeline at full size with random weights, built on ``device``.

    ``tiny_folder`` is the built tiny model of the same family (``imagestudio models path tiny-…``).
    ``configs`` overrides the stored real configs (tests use the tiny ones to run this on a CPU).
    Building on CUDA initialises the weights there in seconds; move the pipeline to the CPU before
    applying an offload plan (:func:`measure_plan` does).
    """
    import diffusers
    import torch

    spec = get_model(model_id)
    dtype = dtype or torch.bfloat16
    configs = {name: dict(c) for name, c in (configs or component_configs(spec)).items()}
    tiny_text = json.loads((Path(tiny_folder) / "text_encoder" / "config.json").read_text(encoding="utf-8"))
    for key in _TOKEN_ID_KEYS:
        if key in tiny_text:
            configs["text_encoder"][key] = tiny_text[key]
    torch.manual_seed(seed)
    components = {
        name: build_component(spec.family, name, configs[name], device=device, dtype=dtype)
        for name in COMPONENTS
    }
    extra: dict[str, Any] = {}
    if spec.family == "qwen-image-edit":
        from imagestudio.engine.processor import load_edit_processor

        processor = load_edit_processor(Path(tiny_folder) / "processor")
        if processor is not None:
            extra["processor"] = processor
    pipeline_class = getattr(diffusers, spec.pipeline_class)
    pipe = pipeline_class.from_pretrained(tiny_folder, **components, **extra, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


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
