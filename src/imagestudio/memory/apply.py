"""A memory plan → diffusers' own calls. No tensor is moved by hand here.

* quantized storage (NF4, int8) happens while loading: :func:`quantization_config` gives the
  ``PipelineQuantizationConfig`` that :func:`imagestudio.engine.loader.load_pipeline` passes on;
* everything else is applied to a loaded pipeline by :func:`apply_plan`, in the order diffusers needs:
  attention backend and layerwise casting first (they wrap the modules), then VAE tiling, then placement.

On a CPU-only machine the planner only ever plans ``full``. Tests still apply model and group offload
with a CPU onload device (diffusers allows both; side streams and accelerate's sequential hooks need a
real accelerator and are refused there).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from imagestudio.memory.sizes import GROUP_BLOCK_MODULES

if TYPE_CHECKING:
    from imagestudio.memory.plan import MemoryPlan
    from imagestudio.models.pipeline import Pipeline

log = logging.getLogger(__name__)


def quantization_config(plan: MemoryPlan) -> Any | None:
    """The load-time quantization of the transformer the plan asks for (None for bf16/fp8)."""
    if plan.weights not in ("nf4", "int8"):
        return None
    import torch
    from diffusers.quantizers.pipe_quant_config import PipelineQuantizationConfig

    compute = getattr(torch, plan.compute_dtype)
    if plan.weights == "nf4":
        return PipelineQuantizationConfig(
            quant_backend="bitsandbytes_4bit",
            quant_kwargs={
                "load_in_4bit": True,
                "bnb_4bit_quant_type": "nf4",
                "bnb_4bit_compute_dtype": compute,
            },
            components_to_quantize=["transformer"],
        )
    from diffusers.quantizers.quantization_config import TorchAoConfig
    from torchao.quantization import Int8WeightOnlyConfig

    int8 = TorchAoConfig(Int8WeightOnlyConfig())
    return PipelineQuantizationConfig(quant_mapping={"transformer": int8})


def _modules(pipe: Pipeline) -> dict[str, Any]:
    import torch

    return {name: c for name, c in pipe.components.items() if isinstance(c, torch.nn.Module)}


def set_vae_tiling(pipe: Pipeline, enabled: bool, tile_pixels: int | None = None) -> None:
    """Turn the VAE's own tiling on or off (cheap: no reload). ``tile_pixels`` shrinks AutoencoderKL's
    tiles, whose default (its 1024-px sample size) would leave a 1024² decode untiled."""
    vae = getattr(pipe, "vae", None)
    if vae is None or not hasattr(vae, "enable_tiling"):
        return
    if not enabled:
        vae.disable_tiling()
        return
    vae.enable_tiling()
    if tile_pixels and hasattr(vae, "tile_sample_min_size"):
        latent = tile_pixels // (2 ** (len(vae.config.block_out_channels) - 1))
        # AutoencoderKL steps by 3/4 of a tile in latent space but crops by 3/4 in pixels: the two only
        # agree (and the image keeps its size) when a quarter tile is a whole number of latents.
        if latent % 4:
            raise ValueError(f"VAE tile of {tile_pixels} px is not a multiple of 4 latents")
        vae.tile_sample_min_size = tile_pixels
        vae.tile_latent_min_size = latent


def apply_plan(pipe: Pipeline, plan: MemoryPlan, device: str, *, family: str | None = None) -> None:
    """Configure a freshly loaded (CPU) pipeline as ``plan`` says and place it for ``device``."""
    modules = _modules(pipe)
    transformer = modules.get("transformer")
    if transformer is not None and plan.attention_backend != "native":
        transformer.set_attention_backend(plan.attention_backend)
    if transformer is not None and plan.weights == "fp8":
        store_in_fp8(transformer)
    from imagestudio.memory.activations import ACTIVATIONS

    model = ACTIVATIONS.get(family or "")
    set_vae_tiling(pipe, plan.vae_tiling, model.vae_tile_pixels if model else None)

    if plan.profile == "full":
        pipe.to(device)
    elif plan.profile == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    elif plan.profile == "group_offload":
        _group_offload(modules, device, pinned=plan.pinned)
    elif plan.profile == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:  # pragma: no cover - MemoryPlan.profile is a closed set
        raise ValueError(f"unknown memory profile {plan.profile!r}")
    log.info("placed pipeline for %s: %s", device, plan.describe())


def store_in_fp8(module: Any) -> None:
    """Layerwise casting: weights stored in float8, widened to the module's dtype layer by layer in use."""
    import torch

    module.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=module.dtype)


def _group_offload(modules: dict[str, Any], device: str, *, pinned: bool) -> None:
    """Group offloading of every component but the VAE (small, and it decodes in one go)."""
    import torch

    for name, module in modules.items():
        if name == "vae":
            module.to(torch.device(device))
        else:
            group_offload(module, device, pinned=pinned)


def group_offload(module: Any, device: str, *, pinned: bool) -> None:
    """Block-level group offloading of one component (its weights in CPU RAM) onto ``device``.

    One block per group with a side stream on CUDA: the next block is copied while the current one
    computes. ``pinned`` pins every block up front (fast; briefly needs a second copy in RAM); otherwise
    diffusers pins each block on the fly (``low_cpu_mem_usage``).
    """
    import torch
    from diffusers.hooks.group_offloading import apply_group_offloading

    onload = torch.device(device)
    streams = onload.type == "cuda"
    options: dict[str, Any] = {
        "onload_device": onload,
        "offload_device": torch.device("cpu"),
        "offload_type": "block_level",
        "num_blocks_per_group": 1,
        "use_stream": streams,
        "low_cpu_mem_usage": streams and not pinned,
    }
    blocks = GROUP_BLOCK_MODULES.get(type(module).__name__)
    if blocks:
        apply_group_offloading(module, block_modules=blocks, **options)
    elif hasattr(module, "enable_group_offload"):
        module.enable_group_offload(**options)
    else:
        apply_group_offloading(module, **options)


def resident_components(pipe: Any) -> dict[str, str]:
    """Where each component's weights are right now: a device, or ``offloaded`` under offload hooks.

    After a job with model offload every component is back in RAM, so the accelerator shows ~0 GB in
    use; the job's peak is what :mod:`imagestudio.memory.report` records next to this.
    """
    import torch

    where: dict[str, str] = {}
    components = getattr(pipe, "components", None)
    if not isinstance(components, dict):
        return where
    for name, module in components.items():
        if not isinstance(module, torch.nn.Module):
            continue
        # One parameter tells: without hooks a component is placed whole; with hooks its weights move
        # during the job and the report says so. (Walking every parameter cost ~2 ms a job.)
        first = next(module.parameters(), None)
        if first is None:
            continue
        hooked = hasattr(module, "_hf_hook") or hasattr(module, "_diffusers_hook")
        where[name] = f"{first.device} (offload hooks)" if hooked else str(first.device)
    return where
