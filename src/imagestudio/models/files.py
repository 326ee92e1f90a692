"""Which files of a hub repository a diffusers pipeline needs.

A model repository holds more than the pipeline loads: README images, pickle copies of the weights
(``.bin``), ONNX exports, half-precision duplicates (``*.fp16.safetensors``), ``.gitattributes``. On the
two models here that is tens of gigabytes nobody uses. diffusers loads, for each component that
``model_index.json`` names, the files directly inside that component's folder: its config, its
safetensors weights (one file, or shards plus an index), tokenizer or processor files. That is what
we fetch; everything here is a pure function of file names so it can be tested on real file lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MODEL_INDEX = "model_index.json"
SAFETENSORS = ".safetensors"
SAFETENSORS_INDEX = ".safetensors.index.json"

#: Weights in formats the app never loads (pickle can run code; the others are other runtimes').
SKIPPED_WEIGHT_SUFFIXES = (
    ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".onnx", ".onnx_data", ".pb", ".h5", ".msgpack",
    ".tflite", ".gguf", ".ggml", ".npz", ".joblib", ".mlmodel",
)  # fmt: skip
#: Documentation and media: model cards and their pictures.
SKIPPED_DOC_SUFFIXES = (
    ".md", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".svg", ".avif", ".mp4", ".webm", ".pdf",
)  # fmt: skip

# "<stem>[.<variant>][-00001-of-00003].safetensors" and "<stem>.safetensors.index[.<variant>].json":
# diffusers' and transformers' naming for precision variants of the same weights.
_SHARD_SUFFIX = re.compile(r"-\d+-of-\d+$")
_VARIANT_INDEX = re.compile(r"\.safetensors\.index\.(?P<variant>[^.]+)\.json$")


def component_folders(model_index: Mapping[str, Any]) -> list[str]:
    """The component folders ``model_index.json`` names, in its order.

    Entries look like ``"vae": ["diffusers", "AutoencoderKL"]``; keys starting with ``_`` are metadata
    and ``[null, null]`` marks an optional component this checkpoint does not have.
    """
    folders = []
    for key, value in model_index.items():
        if key.startswith("_") or not isinstance(value, (list, tuple)) or len(value) != 2:
            continue
        library, class_name = value
        if isinstance(library, str) and isinstance(class_name, str):
            folders.append(key)
    return folders


def weight_variant(name: str) -> str | None:
    """The precision variant of a safetensors weights or index file name (``fp16``), else None."""
    match = _VARIANT_INDEX.search(name)
    if match:
        return match.group("variant")
    if not name.endswith(SAFETENSORS):
        return None
    stem = _SHARD_SUFFIX.sub("", name[: -len(SAFETENSORS)])
    return stem.rsplit(".", 1)[1] if "." in stem else None


def is_weights_file(name: str) -> bool:
    """Safetensors weights or their shard index, variant or not."""
    return name.endswith((SAFETENSORS, SAFETENSORS_INDEX)) or bool(_VARIANT_INDEX.search(name))


def _wanted_in_component(name: str) -> bool:
    lower = name.lower()
    if name.startswith("."):
        return False
    return not lower.endswith(SKIPPED_WEIGHT_SUFFIXES + SKIPPED_DOC_SUFFIXES)


def select_pipeline_files(paths: Iterable[str], components: Iterable[str]) -> list[str]:
    """The repository paths a pipeline with these component folders needs, sorted.

    ``model_index.json`` plus, for each component, the files directly inside its folder, without
    other weight formats, documents, media, hidden files, and without precision variants when the
    component also has plain weights (diffusers loads the plain ones unless told otherwise).
    """
    wanted_components = set(components)
    by_component: dict[str, list[str]] = {}
    selected = []
    for path in paths:
        if path == MODEL_INDEX:
            selected.append(path)
            continue
        folder, _, name = path.partition("/")
        if folder not in wanted_components or not name or "/" in name or not _wanted_in_component(name):
            continue
        by_component.setdefault(folder, []).append(name)
    for folder, names in by_component.items():
        has_plain_weights = any(is_weights_file(n) and weight_variant(n) is None for n in names)
        for name in names:
            if has_plain_weights and is_weights_file(name) and weight_variant(name) is not None:
                continue
            selected.append(f"{folder}/{name}")
    return sorted(selected)
