"""Load a model's diffusers pipeline and place it as its memory plan says, the same way for real and
tiny models (the folder comes from :mod:`imagestudio.models.locate`).

Rules every load follows (see shared notes on the models):

* ``torch_dtype`` is passed to ``from_pretrained``; casting afterwards with ``.to(dtype)`` holds two
  copies of the weights in RAM at once (the 32 GB-host crash users report when loading Qwen edit).
* safetensors only: a folder holding only pickle weights is refused rather than unpickled.
* nothing is downloaded implicitly: a missing model is a :class:`ModelNotAvailable` with its size and
  the command that fetches it (downloads check disk space first and show progress).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from imagestudio.errors import InvalidRequest, ModelNotAvailable
from imagestudio.models.quiet import quiet_library_progress
from imagestudio.models.state import require_model_dir
from imagestudio.registry import EncoderPrecision, ModelSpec, WeightVariant

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.memory.plan import MemoryPlan
    from imagestudio.models.variants import VariantFiles

log = logging.getLogger(__name__)


class PipelineLoader(Protocol):
    """Reads a model's pipeline from disk onto the CPU (:func:`load_pipeline`, or a wrapper around it)."""

    def __call__(
        self,
        spec: ModelSpec,
        settings: Settings,
        quantization_config: Any = None,
        *,
        weights: str = "bf16",
        text_encoder_weights: EncoderPrecision | None = None,
    ) -> Any: ...


def _refuse_pickle_only(folder: Path) -> None:
    has_safetensors = any(folder.rglob("*.safetensors"))
    has_pickle = any(p for pattern in ("*.bin", "*.pt", "*.ckpt", "*.pth") for p in folder.rglob(pattern))
    if has_pickle and not has_safetensors:
        raise ModelNotAvailable(
            f"{folder} holds only pickle weights (.bin/.pt); imagestudio loads safetensors only, because "
            "pickle files can run code when loaded",
            param="model",
            code="model_pickle_only",
            details={"folder": str(folder)},
        )


def load_pipeline(
    spec: ModelSpec,
    settings: Settings,
    quantization_config: Any = None,
    *,
    weights: str = "bf16",
    text_encoder_weights: EncoderPrecision | None = None,
) -> Any:
    """Load the model's pipeline on the CPU in its configured dtype; placing it is the caller's job.

    ``quantization_config`` (a diffusers ``PipelineQuantizationConfig``, from the memory plan) quantizes
    components while they load, so the full-precision weights never sit in RAM. ``weights`` names the
    registry variant whose files are read (see :mod:`imagestudio.models.variants`): a GGUF transformer
    file next to the base folder's other components, or an SDNQ pipeline folder. ``text_encoder_weights``
    int8/uint4 quantizes the text encoder with SDNQ while it loads, unless the variant ships it so; None
    runs the encoder the variant comes with (:attr:`~imagestudio.registry.WeightVariant.encoder`).
    Every file is checked before any weight is read.
    """
    import diffusers
    import torch

    quiet_library_progress()
    variant = spec.variant(weights)
    text_encoder_weights = text_encoder_weights or variant.encoder
    files = require_variant_files(spec, variant, settings)
    folder = files.pipeline_dir
    _refuse_pickle_only(folder)
    options = settings.model(spec.id)
    pipeline_class = getattr(diffusers, spec.pipeline_class)
    dtype = getattr(torch, options.torch_dtype)
    kwargs: dict[str, Any] = {
        # ``dtype`` (diffusers 0.42's name for ``torch_dtype``): weights are created in it, never cast after.
        "dtype": dtype,
        "low_cpu_mem_usage": options.low_cpu_mem_usage,
        "use_safetensors": True,
    }
    if quantization_config is not None:
        if variant.quantized:
            raise InvalidRequest(
                f"{spec.id} {variant.name} is stored quantized already; it cannot be quantized again "
                "on load: set device.weights: auto (or bf16) to run it",
                param="weights",
                code="weights_conflict",
            )
        kwargs["quantization_config"] = quantization_config
    encoder_precision = shipped_encoder_precision(folder)
    if variant.format == "sdnq" or encoder_precision != "bf16" or text_encoder_weights != "bf16":
        import_sdnq(f"{spec.id} {variant.name}")
    if variant.format == "gguf":
        assert files.gguf_file is not None
        kwargs["transformer"] = load_gguf_transformer(
            spec, files.gguf_file, files.transformer_config_dir, dtype
        )
    if text_encoder_weights != encoder_precision:
        if encoder_precision != "bf16":
            raise InvalidRequest(
                f"{spec.id} {variant.name} ships its text encoder as {encoder_precision}; it cannot run "
                f"as {text_encoder_weights}",
                param="weights",
                code="weights_conflict",
            )
        kwargs["text_encoder"] = load_quantized_text_encoder(spec, folder, text_encoder_weights, dtype)
    if spec.family == "qwen-image-edit":
        from imagestudio.models.processor import load_edit_processor

        processor = load_edit_processor(folder / "processor")
        if processor is not None:
            kwargs["processor"] = processor
    log.info("loading %s from %s (%s)", spec.id, files.describe(), options.torch_dtype)
    pipe = pipeline_class.from_pretrained(folder, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def require_variant_files(spec: ModelSpec, variant: WeightVariant, settings: Settings) -> VariantFiles:
    """The variant's files, whole; a missing variant is one line with the command that fetches it."""
    from imagestudio.models.variants import VariantFiles, locate_variant, variant_files

    if not variant.quantized:
        return VariantFiles(spec.id, variant, require_model_dir(spec, settings), None, "base")
    files = variant_files(spec, variant, settings)
    if files is not None:
        return files
    own, _source = locate_variant(spec, variant, settings)
    if own is not None:
        what = f"the base folder of {spec.id} (configs, tokenizer, VAE, text encoder) it runs with"
    elif variant.format == "gguf":
        what = f"{variant.repo_id}'s {variant.filename}" if variant.repo_id else "its GGUF file"
    else:
        what = f"the SDNQ pipeline {variant.repo_id}" if variant.repo_id else "its SDNQ folder"
    size = f", about {variant.transformer_bytes / 1000**3:.1f} GB" if variant.transformer_bytes else ""
    raise ModelNotAvailable(
        f"{spec.id} {variant.name} is not on this machine: missing {what}{size}. Get it with: imagestudio "
        f"models download {spec.id} --weights {variant.name} — or set models.{spec.id}.weights_paths."
        f"{variant.name} in config.yaml",
        param="weights",
        code="variant_missing",
        details={"model": spec.id, "weights": variant.name},
    )


def import_sdnq(purpose: str) -> Any:
    """``import sdnq``, which registers its quantizer with diffusers and transformers: it must come before
    loading any SDNQ folder (transformers otherwise fails with a size mismatch)."""
    import os

    import torch

    from imagestudio.models.gguf_files import require_package

    if "sdnq" not in sys.modules and not torch.cuda.is_available():
        # Without CUDA, sdnq's import probes torch.compile by compiling a test function with Inductor
        # (15-20 s on two cores, and a C compiler needed), then compiles its dequantizers on first use:
        # eager kernels are what a CPU runs anyway. A value the user set is kept.
        os.environ.setdefault("SDNQ_USE_TORCH_COMPILE", "0")
    # Its import warns on every CPU-only machine that an optional kernel package is missing.
    sdnq_log = logging.getLogger("sdnq")
    level = sdnq_log.level
    sdnq_log.setLevel(logging.ERROR)
    try:
        return require_package("sdnq", purpose)
    finally:
        sdnq_log.setLevel(level)


def shipped_encoder_precision(folder: Path) -> EncoderPrecision:
    """The precision the folder's text encoder is stored in: bf16, or its SDNQ weights dtype."""
    try:
        config = json.loads((folder / "text_encoder" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "bf16"
    quantization = config.get("quantization_config") if isinstance(config, dict) else None
    if not isinstance(quantization, dict) or quantization.get("quant_method") != "sdnq":
        return "bf16"
    dtype = quantization.get("weights_dtype")
    return "int8" if dtype == "int8" else "uint4"


def load_gguf_transformer(spec: ModelSpec, path: Path, config_dir: Path, dtype: Any) -> Any:
    """The transformer from one GGUF file, its config from the local base folder (never the hub).

    The file's header is checked first (names, types, length: one line on any problem).
    """
    import diffusers
    from diffusers import GGUFQuantizationConfig

    from imagestudio.models.gguf_files import check_gguf_file

    index = json.loads((config_dir.parent / "model_index.json").read_text(encoding="utf-8"))
    model_class = getattr(diffusers, index["transformer"][1])
    check_gguf_file(path, spec, model_class, config_dir)
    return model_class.from_single_file(
        str(path),
        quantization_config=GGUFQuantizationConfig(compute_dtype=dtype),  # type: ignore[no-untyped-call]
        config=str(config_dir),
        torch_dtype=dtype,
        local_files_only=True,
    )


def load_quantized_text_encoder(
    spec: ModelSpec, folder: Path, precision: EncoderPrecision, dtype: Any
) -> Any:
    """The folder's text encoder quantized by SDNQ while it loads (the vision tower too, for Qwen2.5-VL)."""
    import transformers

    from imagestudio.models.tiny_variants import sdnq_config

    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    encoder_class = getattr(transformers, index["text_encoder"][1])
    return encoder_class.from_pretrained(
        folder / "text_encoder",
        dtype=dtype,
        quantization_config=sdnq_config(precision, every_layer=spec.tiny),
    )


def load_planned(
    loader: PipelineLoader, spec: ModelSpec, settings: Settings, device: str, plan: MemoryPlan
) -> Any:
    """Load ``spec`` with ``loader`` and place it on ``device`` as the memory ``plan`` says.

    The plan's quantization (if any) is applied while the weights load, as are its weight variant and
    text encoder precision; its placement (offload hooks, layerwise casting, VAE tiling) right after.
    """
    from imagestudio.memory.apply import apply_plan, quantization_config

    kwargs: dict[str, Any] = {}
    quantization = quantization_config(plan)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    # Only passed when not the default, so loaders wrapping load_pipeline for bf16 need not know them.
    if plan.variant != "bf16":
        kwargs["weights"] = plan.variant
    if plan.text_encoder_weights != "bf16":
        kwargs["text_encoder_weights"] = plan.text_encoder_weights
    pipe = loader(spec, settings, **kwargs)
    apply_plan(pipe, plan, device, family=spec.family)
    return pipe
