"""Checks of a GGUF transformer file before it is loaded: one clear line instead of a late, obscure failure.

diffusers' GGUF loader reads the whole file first and fails late and unclearly on files that cannot work:
a Qwen-Image file with ComfyUI's ``model.diffusion_model.`` prefix has every tensor dropped as unused and
then dies with "Cannot copy out of meta tensor"; a ComfyUI "scaled fp8" checkpoint loads without its
scales and draws noise; a truncated download fails inside numpy. Here only the file's header is read
(the ``gguf`` package maps the file; no tensor data is touched), and the tensor names are compared with
the model's, as diffusers will convert them, on a model built on the meta device (no weights allocated).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ModelNotAvailable

if TYPE_CHECKING:
    from imagestudio.registry import ModelSpec

GGUF_MAGIC = b"GGUF"
#: Published GGUF files of each family that load here, for the messages.
WORKING_FILES = {
    "z-image": "a Z-Image GGUF such as jayn7/Z-Image-Turbo-GGUF's z_image_turbo-Q4_K_M.gguf",
    "qwen-image-edit": "a Qwen-Image-Edit-2511 GGUF in diffusers' tensor names, such as "
    "unsloth/Qwen-Image-Edit-2511-GGUF's qwen-image-edit-2511-Q4_K_M.gguf",
}


@dataclass(frozen=True)
class GgufSummary:
    """What a GGUF file's header says: its tensors' names and types, and bytes by type."""

    path: Path
    names: tuple[str, ...]
    #: Quantization type name → bytes of tensor data stored in it.
    bytes_by_type: dict[str, int]


def refuse(path: Path, spec: ModelSpec, problem: str, code: str) -> ModelNotAvailable:
    """One line naming the file, what is wrong and what would work."""
    return ModelNotAvailable(
        f"{path}: {problem}; {spec.id} needs {WORKING_FILES.get(spec.family, 'another GGUF file')} "
        f"(imagestudio models download {spec.id} --weights gguf-q4_k_m)",
        param="weights",
        code=code,
        details={"file": str(path), "model": spec.id},
    )


def require_package(package: str, purpose: str) -> Any:
    """Import an optional package, or one line saying how to install it."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise ModelNotAvailable(
            f"{purpose} needs the {package} package, which is not installed: pip install {package} "
            "(part of imagestudio's default install), or run the bf16 weights",
            param="weights",
            code="package_missing",
            details={"package": package},
        ) from None


def _is_scaled_fp8(path: Path) -> bool:
    """A ComfyUI "scaled fp8" checkpoint: float8 weights with per-tensor ``scale_weight`` tensors."""
    try:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 2 <= size <= 100 * 1024**2:
                return False
            header = json.loads(handle.read(size))
    except (OSError, ValueError):
        return False
    if not isinstance(header, dict):
        return False
    names = set(header)
    return "scaled_fp8" in names or any(n.endswith((".scale_weight", ".weight_scale")) for n in names)


def read_summary(path: Path, spec: ModelSpec) -> GgufSummary:
    """The header of the GGUF file at ``path``; a damaged, cut short or foreign file is refused."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
        size = path.stat().st_size
    except OSError as exc:
        raise refuse(path, spec, f"cannot be read ({exc.strerror or exc})", "gguf_unreadable") from None
    if magic != GGUF_MAGIC:
        if _is_scaled_fp8(path):
            raise refuse(
                path,
                spec,
                'is a ComfyUI "scaled fp8" checkpoint, which diffusers loads without its scales (the '
                "images come out as noise); use a GGUF file or the sdnq-int8 variant instead",
                "scaled_fp8",
            )
        raise refuse(path, spec, "is not a GGUF file (it does not start with GGUF)", "not_gguf")
    gguf = require_package("gguf", f"reading {path.name}")
    try:
        reader = gguf.GGUFReader(str(path))
    except ValueError as exc:
        text = " ".join(str(exc).split())[:160]
        if "GGMLQuantizationType" in text:
            raise refuse(
                path,
                spec,
                f"holds a tensor type this gguf package does not know ({text})",
                "gguf_unknown_type",
            ) from None
        raise refuse(
            path, spec, f"is cut short or damaged ({text}); download it again", "gguf_truncated"
        ) from None
    except (IndexError, KeyError, OSError) as exc:
        raise refuse(
            path, spec, f"is cut short or damaged ({exc}); download it again", "gguf_truncated"
        ) from None
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        raise refuse(
            path,
            spec,
            f"is cut short ({size:,} of at least {end:,} bytes); download it again",
            "gguf_truncated",
        )
    supported = _diffusers_gguf_types()
    by_type: dict[str, int] = {}
    for tensor in reader.tensors:
        kind = tensor.tensor_type
        if kind not in supported:
            raise refuse(
                path,
                spec,
                f"stores {tensor.name} as {kind.name}, a type diffusers cannot dequantize "
                f"(it reads {', '.join(sorted(t.name for t in supported))})",
                "gguf_unknown_type",
            )
        by_type[kind.name] = by_type.get(kind.name, 0) + int(tensor.n_bytes)
    return GgufSummary(path, tuple(str(t.name) for t in reader.tensors), by_type)


def _diffusers_gguf_types() -> set[Any]:
    from diffusers.quantizers.gguf.utils import SUPPORTED_GGUF_QUANT_TYPES, UNQUANTIZED_TYPES

    return set(SUPPORTED_GGUF_QUANT_TYPES) | set(UNQUANTIZED_TYPES)


def expected_names(model_class: Any, config_dir: Path) -> set[str]:
    """The state-dict names of ``model_class`` at the config in ``config_dir``, built without weights."""
    from accelerate import init_empty_weights

    config = model_class.load_config(config_dir)
    with init_empty_weights():
        model = model_class.from_config(config)
    return set(model.state_dict())


def converted_names(model_class: Any, names: tuple[str, ...], expected: set[str]) -> set[str]:
    """``names`` as diffusers' single-file loader will rename them for ``model_class``."""
    import torch
    from diffusers.loaders.single_file_model import SINGLE_FILE_LOADABLE_CLASSES

    if set(names) <= expected:  # already in diffusers' names: diffusers loads them as they are
        return set(names)
    entry: Any = SINGLE_FILE_LOADABLE_CLASSES.get(model_class.__name__)
    mapping = entry.get("checkpoint_mapping_fn") if isinstance(entry, dict) else None
    if mapping is None:
        return set(names)
    # Stand-in tensors: the renames only split fused projections in three along the first axis.
    checkpoint = {name: torch.empty(3, device="meta") for name in names}
    return set(mapping(checkpoint=checkpoint, config=None))


def check_gguf_file(path: Path, spec: ModelSpec, model_class: Any, config_dir: Path) -> GgufSummary:
    """Refuse, in one line, a GGUF file that cannot load as ``spec``'s transformer; else its summary."""
    summary = read_summary(path, spec)
    expected = expected_names(model_class, config_dir)
    found = converted_names(model_class, summary.names, expected)
    missing = sorted(expected - found)
    if missing:
        unused = sorted(found - expected)
        example = f"; e.g. it has {unused[0]!r} where {missing[0]!r} is expected" if unused else ""
        raise refuse(
            path,
            spec,
            f"its tensor names do not fit {spec.id}'s transformer ({len(missing)} of {len(expected)} "
            f"weights missing{example})",
            "gguf_wrong_names",
        )
    return summary
