"""Find a model's files and load its diffusers pipeline, the same way for real and tiny models.

Rules every load follows (see shared notes on the models):

* ``torch_dtype`` is passed to ``from_pretrained``; casting afterwards with ``.to(dtype)`` holds two
  copies of the weights in RAM at once (the 32 GB-host crash users report when loading Qwen edit).
* safetensors only: a folder holding only pickle weights is refused rather than unpickled.
* nothing is downloaded implicitly: a missing model is a :class:`ModelNotAvailable` with its size and
  the command that fetches it (downloads check disk space first and show progress).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ModelNotAvailable
from imagestudio.registry import ModelSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from diffusers import DiffusionPipeline

    from imagestudio.config import Settings
    from imagestudio.memory.plan import MemoryPlan

log = logging.getLogger(__name__)

MODEL_INDEX = "model_index.json"


def not_available(spec: ModelSpec, detail: str = "") -> ModelNotAvailable:
    size_gb = spec.download_bytes / 1000**3
    where = f"{spec.repo_id}, about {size_gb:.1f} GB" if spec.repo_id else "built locally"
    return ModelNotAvailable(
        f"{spec.id} is not on this machine ({where}){detail}. Get it with: imagestudio models download "
        f"{spec.id} — or point models.{spec.id}.path in config.yaml at a downloaded folder",
        param="model",
        code="model_missing",
        details={"model": spec.id, "size": f"{size_gb:.1f}"},
    )


def hub_cache_dir(spec: ModelSpec, revision: str | None = None, repo: str | None = None) -> Path | None:
    """The model's snapshot in the Hugging Face cache, if one is there (no network is touched).

    ``repo`` overrides the registry's repository (``models.<id>.repo``). Whether the snapshot is
    complete is :func:`require_model_dir`'s question.
    """
    from imagestudio.models.cache import cached_snapshot

    repo = repo or spec.repo_id
    if repo is None:
        return None
    folder = cached_snapshot(repo, revision)
    return folder if folder is not None and (folder / MODEL_INDEX).is_file() else None


def find_model_dir(spec: ModelSpec, settings: Settings, *, build_tiny: bool = True) -> Path | None:
    """Where this model's diffusers folder is: config ``path``, the models dir, then the HF cache.

    Tiny models are built on first use into the models directory (unless ``build_tiny`` is false).
    Returns None when the model is not on this machine.
    """
    configured = settings.model(spec.id).path
    if configured is not None:
        return configured if (configured / MODEL_INDEX).is_file() else None
    local = settings.models_dir / spec.id
    if spec.tiny:
        if build_tiny:
            from imagestudio.engine.tiny import ensure_tiny_model

            return ensure_tiny_model(spec.id, local)
        return local if (local / MODEL_INDEX).is_file() else None
    if (local / MODEL_INDEX).is_file():
        return local
    return hub_cache_dir(spec, settings.model(spec.id).revision, settings.model(spec.id).repo)


def require_model_dir(spec: ModelSpec, settings: Settings) -> Path:
    from imagestudio.models.state import interrupted_download, require_complete

    folder = find_model_dir(spec, settings)
    if folder is None:
        if (interrupted := interrupted_download(spec, settings)) is not None:
            raise interrupted
        configured = settings.model(spec.id).path
        detail = f": models.{spec.id}.path = {configured} has no {MODEL_INDEX}" if configured else ""
        raise not_available(spec, detail)
    # A folder with every file in place but one cut short must never load as if it were whole.
    require_complete(spec, settings, folder)
    return folder


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


def quiet_library_progress() -> None:
    """Turn off diffusers'/transformers' own "Loading pipeline components" bars.

    The app reports progress itself (a rich bar on the CLI, job events in the UI/API); the libraries'
    tqdm bars would interleave with it on stderr and, for a server, fill its log.
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def load_pipeline(spec: ModelSpec, settings: Settings, quantization_config: Any = None) -> DiffusionPipeline:
    """Load the model's pipeline on the CPU in its configured dtype; placing it is the caller's job.

    ``quantization_config`` (a diffusers ``PipelineQuantizationConfig``, from the memory plan) quantizes
    components while they load, so the full-precision weights never sit in RAM.
    """
    import diffusers
    import torch

    quiet_library_progress()
    folder = require_model_dir(spec, settings)
    _refuse_pickle_only(folder)
    options = settings.model(spec.id)
    pipeline_class = getattr(diffusers, spec.pipeline_class)
    kwargs: dict[str, Any] = {
        # ``dtype`` (diffusers 0.42's name for ``torch_dtype``): weights are created in it, never cast after.
        "dtype": getattr(torch, options.torch_dtype),
        "low_cpu_mem_usage": options.low_cpu_mem_usage,
        "use_safetensors": True,
    }
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if spec.family == "qwen-image-edit":
        from imagestudio.engine.processor import load_edit_processor

        processor = load_edit_processor(folder / "processor")
        if processor is not None:
            kwargs["processor"] = processor
    log.info("loading %s from %s (%s)", spec.id, folder, options.torch_dtype)
    pipe = pipeline_class.from_pretrained(folder, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_planned(
    loader: Callable[..., Any],
    spec: ModelSpec,
    settings: Settings,
    device: str,
    plan: MemoryPlan | None = None,
) -> tuple[Any, MemoryPlan | None]:
    """Load ``spec`` with ``loader`` and place it on ``device`` as the memory ``plan`` says.

    Without a plan, the model's default job is planned on this machine. Loaders that return something
    other than a diffusers pipeline (stand-ins in tests) are only moved to ``device``.
    """
    from imagestudio.memory.apply import apply_plan, quantization_config
    from imagestudio.memory.planner import MemoryPlanner

    if plan is None and loader is load_pipeline:
        plan = MemoryPlanner(settings, device=device).plan(spec)
    quantization = quantization_config(plan) if plan is not None else None
    if quantization is not None:
        pipe = loader(spec, settings, quantization_config=quantization)
    else:
        pipe = loader(spec, settings)
    if not hasattr(pipe, "components"):
        if hasattr(pipe, "to"):
            pipe.to(device)
        return pipe, plan
    if plan is None:
        plan = MemoryPlanner(settings, device=device).plan(spec)
    apply_plan(pipe, plan, device, family=spec.family)
    return pipe, plan
