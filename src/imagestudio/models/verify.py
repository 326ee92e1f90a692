"""Is a diffusers model folder whole? Checked from headers and configs only, in milliseconds.

A download cut short, a copy that ran out of space, a shard deleted by hand: each would otherwise show
up minutes later as an obscure error deep inside ``from_pretrained`` (or, worse, as a model that loads
with some weights missing). Here each is named before anything loads:

* every component folder ``model_index.json`` names is there, with the files its kind needs (a model:
  ``config.json`` and safetensors weights; a scheduler: its config; a tokenizer: its vocabulary; a
  processor: its preprocessor config and tokenizer);
* every JSON file parses;
* every safetensors file's header parses (8-byte little-endian length, then JSON), each tensor's byte
  range matches its dtype and shape, the ranges tile the data without gaps or overlaps, and the file
  ends exactly where the last tensor does — so a file one byte short is caught without reading a tensor;
* a sharded index names only shards that exist, and each tensor it maps is in that shard's header.

Nothing is cached: a check costs less than remembering its answer safely would.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagestudio.models.files import (
    MODEL_INDEX,
    SAFETENSORS,
    SAFETENSORS_INDEX,
    SKIPPED_WEIGHT_SUFFIXES,
    component_folders,
    weight_variant,
)
from imagestudio.models.units import human_bytes

#: The safetensors format's own limit on the header size; larger means a corrupt length.
MAX_HEADER_BYTES = 100_000_000

#: Bits per element of the safetensors dtypes (sub-byte types are packed).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "U16": 16, "I16": 16, "F16": 16, "BF16": 16,
    "U32": 32, "I32": 32, "F32": 32,
    "U64": 64, "I64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip

TOKENIZER_VOCAB_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "spiece.model", "vocab.txt")


class SafetensorsError(ValueError):
    """A safetensors file whose header is unreadable or does not fit the file."""


@dataclass(frozen=True)
class VerifyReport:
    """The result of checking one folder; ``problems`` is empty when it is whole."""

    folder: Path
    problems: tuple[str, ...]
    components: tuple[str, ...] = ()
    weights_files: int = 0
    weights_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> str | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        """One line: what was checked, or the first problem and how many more."""
        if self.ok and not self.components:
            return f"{self.weights_files} weight file(s) ({human_bytes(self.weights_bytes)}) check out"
        if self.ok:
            return (
                f"{len(self.components)} components, {self.weights_files} safetensors files "
                f"({human_bytes(self.weights_bytes)}) check out"
            )
        more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
        return f"{self.problems[0]}{more}"


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The parsed header of a safetensors file, after checking it against the file's size.

    Raises :class:`SafetensorsError` naming the first thing wrong. Reads only the header.
    """
    size = path.stat().st_size
    if size < 8:
        raise SafetensorsError(f"only {size} bytes: shorter than a safetensors header")
    with path.open("rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        if header_len > MAX_HEADER_BYTES:
            raise SafetensorsError(
                f"header length {header_len} is implausible: not a safetensors file or corrupt"
            )
        if 8 + header_len > size:
            raise SafetensorsError(
                f"header length {header_len} runs past the end of the {size}-byte file (truncated or corrupt)"
            )
        raw = handle.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SafetensorsError("header is not valid JSON (corrupt or not a safetensors file)") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    _check_tensor_ranges(header, data_len=size - 8 - header_len)
    return header


def _tensor_bytes(dtype: str, shape: list[int]) -> int | None:
    bits = DTYPE_BITS.get(dtype)
    if bits is None:
        return None
    return math.ceil(math.prod(shape) * bits / 8)


def _check_tensor_ranges(header: dict[str, Any], data_len: int) -> None:
    ranges: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"tensor {name!r} has a malformed header entry") from None
        valid_shape = isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end) or not valid_shape:
            raise SafetensorsError(f"tensor {name!r} has invalid offsets or shape")
        expected = _tensor_bytes(str(dtype), shape)
        if expected is not None and end - begin != expected:
            raise SafetensorsError(
                f"tensor {name!r} spans {end - begin} bytes but {dtype}{shape} needs {expected}"
            )
        ranges.append((begin, end, name))
    ranges.sort()
    position = 0
    for begin, end, name in ranges:
        if begin != position:
            raise SafetensorsError(
                f"tensor {name!r} starts at byte {begin}, expected {position} (gap or overlap)"
            )
        position = end
    if position > data_len:
        raise SafetensorsError(
            f"truncated: the header describes {position} bytes of tensor data, the file holds {data_len} "
            f"({position - data_len} bytes missing)"
        )
    if position < data_len:
        raise SafetensorsError(f"{data_len - position} unexpected bytes after the last tensor")


@dataclass
class _Checker:
    folder: Path
    skip_weights: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)
    weights_files: int = 0
    weights_bytes: int = 0
    headers: dict[Path, dict[str, Any]] = field(default_factory=dict)
    # Each file is judged once, so a bad one is reported once however many rules look at it.
    parsed: dict[Path, Any] = field(default_factory=dict)

    def problem(self, path: Path | str, message: str) -> None:
        where = path.relative_to(self.folder).as_posix() if isinstance(path, Path) else path
        self.problems.append(f"{where}: {message}")

    def json_file(self, path: Path) -> Any:
        if path not in self.parsed:
            self.parsed[path] = self._read_json(path)
        return self.parsed[path]

    def _read_json(self, path: Path) -> Any:
        if not path.is_file():
            self.problem(path, "missing" if not path.is_symlink() else "missing (broken link)")
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.problem(path, f"does not parse as JSON ({type(exc).__name__})")
            return None

    def safetensors(self, path: Path) -> dict[str, Any] | None:
        if path in self.headers:
            return self.headers[path]
        if path in self.parsed:
            return None  # already reported
        self.parsed[path] = None
        if not path.is_file():
            self.problem(path, "missing" if not path.is_symlink() else "missing (broken link)")
            return None
        try:
            header = read_safetensors_header(path)
        except SafetensorsError as exc:
            self.problem(path, str(exc))
            return None
        except OSError as exc:
            self.problem(path, f"cannot be read ({exc.strerror or exc})")
            return None
        self.headers[path] = header
        self.weights_files += 1
        self.weights_bytes += path.stat().st_size
        return header

    def shard_index(self, index_path: Path) -> None:
        index = self.json_file(index_path)
        if index is None:
            return
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            self.problem(index_path, "has no weight_map")
            return
        by_shard: dict[str, list[str]] = {}
        for tensor, shard in weight_map.items():
            by_shard.setdefault(str(shard), []).append(tensor)
        for shard, tensors in sorted(by_shard.items()):
            shard_path = index_path.parent / shard
            if not shard_path.is_file():
                self.problem(shard_path, f"missing (named by {index_path.name})")
                continue
            header = self.safetensors(shard_path)
            if header is None:
                continue
            absent = [t for t in tensors if t not in header]
            if absent:
                self.problem(
                    shard_path, f"lacks {len(absent)} tensor(s) the index maps to it, e.g. {absent[0]!r}"
                )

    def model_weights(self, component: Path) -> None:
        names = [p.name for p in component.iterdir() if p.is_file() or p.is_symlink()]
        indexes = [n for n in names if n.endswith(SAFETENSORS_INDEX) and weight_variant(n) is None]
        singles = [
            n for n in names if n.endswith(SAFETENSORS) and weight_variant(n) is None and "-of-" not in n
        ]
        if not indexes and not singles:
            variants = sorted({v for n in names if (v := weight_variant(n))})
            if variants:
                self.problem(
                    component, f"only {'/'.join(variants)} variant weights; the plain ones are missing"
                )
            elif any(n.lower().endswith(SKIPPED_WEIGHT_SUFFIXES) for n in names):
                self.problem(
                    component, "only pickle/other-format weights; imagestudio loads safetensors only"
                )
            else:
                self.problem(component, "no weights (*.safetensors)")
            return
        for name in sorted(indexes):
            self.shard_index(component / name)
        for name in sorted(singles):
            self.safetensors(component / name)

    def tokenizer_files(self, component: Path) -> None:
        present = [n for n in TOKENIZER_VOCAB_FILES if (component / n).is_file()]
        if not present:
            self.problem(component, f"no tokenizer vocabulary (one of {', '.join(TOKENIZER_VOCAB_FILES)})")
        elif present == ["vocab.json"] and not (component / "merges.txt").is_file():
            self.problem(component / "merges.txt", "missing (needed with vocab.json)")

    def component(self, name: str, class_name: str) -> None:
        folder = self.folder / name
        if not folder.is_dir():
            self.problem(f"{name}/", f"missing component folder (model_index.json names {class_name})")
            return
        for path in sorted(folder.iterdir()):
            if path.name.endswith(".json") and not path.name.startswith("."):
                self.json_file(path)
        if class_name.endswith("Scheduler"):
            self.json_file(folder / "scheduler_config.json")
        elif "Tokenizer" in class_name:
            self.tokenizer_files(folder)
        elif class_name.endswith(("ImageProcessor", "FeatureExtractor")):
            self.json_file(folder / "preprocessor_config.json")
        elif class_name.endswith("Processor"):
            configs = [
                n for n in ("preprocessor_config.json", "processor_config.json") if (folder / n).is_file()
            ]
            if not configs:
                self.problem(folder, "no preprocessor_config.json or processor_config.json")
            self.tokenizer_files(folder)
        else:
            config = self.json_file(folder / "config.json")
            if config is not None and not isinstance(config, dict):
                self.problem(folder / "config.json", "is not a JSON object")
            if name not in self.skip_weights:
                self.model_weights(folder)


def verify_model_dir(folder: Path, skip_weights: tuple[str, ...] = ()) -> VerifyReport:
    """Check a diffusers-format folder (a plain folder or a hub cache snapshot); never loads a tensor.

    ``skip_weights``: components whose weights come from elsewhere (the transformer of a GGUF variant's
    base folder): their configs are checked, their weights are not required.
    """
    folder = Path(folder)
    checker = _Checker(folder, skip_weights)
    if not folder.is_dir():
        return VerifyReport(folder, (f"{folder}: not a folder",))
    index = checker.json_file(folder / MODEL_INDEX)
    if not isinstance(index, dict):
        if index is not None:
            checker.problem(MODEL_INDEX, "is not a JSON object")
        return VerifyReport(folder, tuple(checker.problems))
    components = component_folders(index)
    if not components:
        checker.problem(MODEL_INDEX, "names no components: not a diffusers pipeline")
    for name in components:
        checker.component(name, str(index[name][1]))
    return VerifyReport(
        folder, tuple(checker.problems), tuple(components), checker.weights_files, checker.weights_bytes
    )


def verify_single_files(folder: Path, paths: list[str]) -> VerifyReport:
    """Check downloaded single weight files (GGUF): each is there and its header lists its tensors."""
    folder = Path(folder)
    problems = []
    total = 0
    for path in paths:
        file = folder / path
        if not file.is_file():
            problems.append(f"{path}: missing")
            continue
        try:
            from gguf import GGUFReader

            tensors = GGUFReader(file, "r").tensors
        except (ValueError, OSError, IndexError) as exc:
            problems.append(f"{path}: not a readable GGUF file ({exc})")
            continue
        if not tensors:
            problems.append(f"{path}: holds no tensors")
        total += file.stat().st_size
    return VerifyReport(folder, tuple(problems), (), len(paths), total)
