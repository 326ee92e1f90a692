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
    from diffusers import DiffusionPipeline

    from imagestudio.config import Settings

log = logging.getLogger(__name__)

MODEL_INDEX = "model_index.json"


def not_available(spec: ModelSpec, detail: str = "") -> ModelNotAvailable:
    size_gb = spec.download_bytes / 1000**3
    where = f"{spec.repo_id}, about {size_gb:.1f} GB" if spec.repo_id else "built locally"
    return ModelNotAvailable(
        f"{spec.id} is not on this machine ({where}){detail}. Get it with: imagestudio models download "
        f"{spec.id} — or point models.{spec.id}.path in config.yaml at a downloaded folder",
        param="model",
    )


def hub_cache_dir(spec: ModelSpec, revision: str | None = None) -> Path | None:
    """The model's snapshot in the Hugging Face cache, if one is there (no network is touched)."""
    if spec.repo_id is None:
        return None
    from huggingface_hub import constants

    # Importing the snapshot resolver costs ~0.25 s of CPU (it pulls in the whole Hub client), which alone
    # broke `models list`'s half-second budget: look for the repository's cache folder first (constants
    # only holds paths) and pay for the resolver only when there is something to resolve.
    repo_folder = Path(constants.HF_HUB_CACHE) / f"models--{spec.repo_id.replace('/', '--')}"
    if not (repo_folder / "snapshots").is_dir():
        return None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(spec.repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None
    return folder if (folder / MODEL_INDEX).is_file() else None


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
    return hub_cache_dir(spec, settings.model(spec.id).revision)


def require_model_dir(spec: ModelSpec, settings: Settings) -> Path:
    folder = find_model_dir(spec, settings)
    if folder is None:
        configured = settings.model(spec.id).path
        detail = f": models.{spec.id}.path = {configured} has no {MODEL_INDEX}" if configured else ""
        raise not_available(spec, detail)
    return folder


def _refuse_pickle_only(folder: Path) -> None:
    has_safetensors = any(folder.rglob("*.safetensors"))
    has_pickle = any(p for pattern in ("*.bin", "*.pt", "*.ckpt", "*.pth") for p in folder.rglob(pattern))
    if has_pickle and not has_safetensors:
        raise ModelNotAvailable(
            f"{folder} holds only pickle weights (.bin/.pt); imagestudio loads safetensors only, because "
            "pickle files can run code when loaded",
            param="model",
        )


def load_pipeline(spec: ModelSpec, settings: Settings) -> DiffusionPipeline:
    """Load the model's pipeline on the CPU in its configured dtype; placing it is the caller's job."""
    import diffusers
    import torch

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
    if spec.family == "qwen-image-edit":
        from imagestudio.engine.processor import load_edit_processor

        processor = load_edit_processor(folder / "processor")
        if processor is not None:
            kwargs["processor"] = processor
    log.info("loading %s from %s (%s)", spec.id, folder, options.torch_dtype)
    pipe = pipeline_class.from_pretrained(folder, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def place_pipeline(pipe: DiffusionPipeline, device: str, settings: Settings) -> str:
    """Put a loaded pipeline on ``device`` following the config's offload switches; returns what it did.

    The documents' ``sequential_offload`` wins over ``enable_cpu_offload`` (both true means sequential).
    Offload only exists to save accelerator memory: on the CPU it is meaningless and skipped.
    """
    dev = settings.device
    if device == "cpu":
        pipe.to("cpu")
        return "cpu"
    if dev.sequential_offload:
        pipe.enable_sequential_cpu_offload(device=device)
        return "sequential"
    if dev.enable_cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
        return "model_offload"
    pipe.to(device)
    return "full"
