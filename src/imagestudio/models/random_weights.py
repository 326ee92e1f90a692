"""Random-weight models at any size, from config dicts: the one place their classes are instantiated.

A config is what a diffusers folder holds in ``<component>/config.json`` (diffusers classes are named by
its ``_class_name``; the text encoder's transformers class is the family's, see
:data:`TEXT_ENCODER_CLASSES`). Three users build from here, at three sizes:

* the memory planner sizes the real models on the meta device (no memory at all;
  :mod:`imagestudio.memory.sizes`);
* the tiny models (:mod:`.tiny`) are built on the CPU with every weight redrawn portably, so every machine
  writes byte-identical files;
* the benchmarks build full-size models from the shipped configs (:mod:`.configs`) straight on a GPU,
  with the classes' own initialisation, to measure memory and time per step without any download.

Importing this module is cheap: torch, diffusers and transformers are imported inside the functions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.models.configs import COMPONENTS

if TYPE_CHECKING:
    import torch

    from imagestudio.registry import ModelSpec

#: The transformers class each family's pipeline loads its text encoder as (diffusers classes are named
#: by the config's own ``_class_name``).
TEXT_ENCODER_CLASSES = {
    "z-image": ("Qwen3Model", "Qwen3Config"),
    "qwen-image-edit": ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLConfig"),
}

#: Parameters some classes create with ``torch.empty`` and expect a checkpoint to fill (garbage there can
#: be NaN): Z-Image's padding tokens.
UNINITIALISED_PARAMETERS = ("x_pad_token", "cap_pad_token")

#: Text-encoder config keys that must name the tokenizer's own ids (a pipeline borrowing another folder's
#: tokenizer takes them from that folder's text encoder).
TOKEN_ID_KEYS = (
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "image_token_id",
    "video_token_id",
    "vision_start_token_id",
    "vision_end_token_id",
    "vision_token_id",
)


def build_component(
    family: str, name: str, config: dict[str, Any], device: str | torch.device = "meta", dtype: Any = None
) -> torch.nn.Module:
    """Instantiate one component's real class from ``config`` on ``device`` (meta: no memory at all).

    The weights are created directly in ``dtype`` (default bf16), so a full-size model on a GPU never
    exists in float32 first; they hold whatever the class initialises them to (on meta: nothing).
    """
    import torch

    dtype = dtype or torch.bfloat16
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            if name == "text_encoder":
                import transformers

                class_name, config_class = TEXT_ENCODER_CLASSES[family]
                fields = {k: v for k, v in config.items() if k not in ("architectures", "_name_or_path")}
                model_config = getattr(transformers, config_class)(**fields)
                module = getattr(transformers, class_name)(model_config)
            else:
                import diffusers

                module = getattr(diffusers, config["_class_name"]).from_config(config)
    finally:
        torch.set_default_dtype(previous)
    # nn.Module.to, not ModelMixin.to: the latter warns about fp32-only modules, which do not exist here.
    # Buffers a class computes in float32 follow the weights' dtype, as a checkpoint loaded in it would.
    built: torch.nn.Module = torch.nn.Module.to(module, dtype).eval()
    return built


def random_component(
    family: str,
    name: str,
    config: dict[str, Any],
    *,
    device: str | torch.device = "cpu",
    dtype: Any = None,
    seed: int | None = None,
) -> torch.nn.Module:
    """One component at ``config``'s size with random weights, on ``device`` in ``dtype``.

    With ``seed``, every weight is redrawn by :func:`redraw_portably` (the same bits on every machine;
    CPU only, and slow at full size). Without, the weights are the classes' own initialisation under the
    current torch seed (seconds on a GPU even at full size), and parameters the classes leave
    uninitialised are set to one.
    """
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    module = build_component(family, name, config, device=device, dtype=dtype)
    if seed is not None:
        redraw_portably(module, seed)
        return module
    with torch.no_grad():
        for parameter_name in UNINITIALISED_PARAMETERS:
            parameter = getattr(module, parameter_name, None)
            if parameter is not None:
                parameter.fill_(1.0)
    return module


def redraw_portably(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every saved float tensor with values that are the same bits on every machine.

    ``torch.manual_seed`` alone is not enough: ``normal_`` (which the transformers initialisers use) takes
    a vectorised Box-Muller path on CPUs with AVX2 and a scalar one elsewhere, whose last bits can differ.
    So values come from one seeded CPU generator, tensor by tensor in name order, as float64 uniform draws
    scaled with exactly rounded arithmetic (``(2u - 1) * b``): uniform draws are plain bit manipulation,
    so no vectorised transcendental function (whose last bits depend on the CPU) is involved.

    * Per-channel vectors (one non-singleton dimension) holding one non-zero constant are norm scales
      (ones): they keep it, since a constant fill is already exact and a random norm scale is unlike any
      trained model.
    * Other vectors (biases, Z-Image's ``x_pad_token``/``cap_pad_token``, which start as zeros) get
      ``U(-0.02, 0.02)``.
    * Everything else (matrices, conv kernels, embeddings) gets ``U(-b, b)`` with ``b = 1 / sqrt(fan_in)``,
      PyTorch's own default bound for linear and conv layers, so activations keep a sane scale. Zero-
      initialised projections are redrawn too, so that no path of the model is trivially zero.
    """
    import torch

    generator = torch.Generator("cpu").manual_seed(seed)
    state = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for name in sorted(state):
            tensor = state[name]
            if not tensor.is_floating_point() or tensor.numel() == 0:
                continue
            flat = tensor.detach().reshape(-1)
            vector_like = tensor.numel() == max(tensor.shape, default=1)
            if vector_like and bool(flat[0] != 0) and bool((flat == flat[0]).all()):
                continue
            bound = 0.02 if vector_like else 1.0 / math.sqrt(tensor.numel() // tensor.shape[0])
            values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            tensor.copy_(((values * 2.0 - 1.0) * bound).to(tensor.dtype))


def random_pipeline(
    spec: ModelSpec,
    configs: dict[str, dict[str, Any]],
    tokenizer_folder: Path,
    *,
    device: str = "cuda",
    dtype: Any = None,
    seed: int = 0,
) -> Any:
    """``spec``'s pipeline with random weights at the size of ``configs`` (one per :data:`COMPONENTS`).

    The three big components are built here; the tokenizer, processor and scheduler are read from
    ``tokenizer_folder``, a built model of the same family (the tiny one: a real Qwen tokenizer over a
    small vocabulary, whose token ids all exist in a full-size embedding; the text encoder's special-token
    ids are taken from it). Random weights produce noise images, but memory and time per step are those
    of a trained model of that size. Built on CUDA the weights are initialised there in seconds.
    """
    import diffusers
    import torch

    from imagestudio.models.processor import load_edit_processor

    dtype = dtype or torch.bfloat16
    configs = {name: dict(config) for name, config in configs.items()}
    tokenizer_text = json.loads((Path(tokenizer_folder) / "text_encoder" / "config.json").read_text("utf-8"))
    for key in TOKEN_ID_KEYS:
        if key in tokenizer_text:
            configs["text_encoder"][key] = tokenizer_text[key]
    torch.manual_seed(seed)
    components: dict[str, Any] = {
        name: random_component(spec.family, name, configs[name], device=device, dtype=dtype)
        for name in COMPONENTS
    }
    if spec.family == "qwen-image-edit":
        processor = load_edit_processor(Path(tokenizer_folder) / "processor")
        if processor is not None:
            components["processor"] = processor
    pipeline_class = getattr(diffusers, spec.pipeline_class)
    pipe = pipeline_class.from_pretrained(tokenizer_folder, **components, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe
