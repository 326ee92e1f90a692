"""Bytes of each weight variant: read from the files when they are here, published figures otherwise.

A plan needs three numbers per variant: the transformer as stored, the text encoder in the precision the
plan runs it at, and what a download of the variant fetches.

* **GGUF** — the file's header lists every tensor's quantization type and shape; :func:`gguf_tensor_bytes`
  sums their stored sizes with ``gguf.GGUFReader`` (the file is memory-mapped: only the header pages are
  read, no tensor is loaded). Without the file: the registry's published file size.
* **SDNQ** — a pipeline folder whose ``transformer/`` and ``text_encoder/`` hold the quantized weights;
  :func:`safetensors_bytes` sums the tensors their safetensors headers declare. Without the folder: the
  registry's published transformer size and the text encoder estimated from its ``nn.Linear`` share.
* **text encoder quantized on the fly** (SDNQ int8/uint4 on the bf16 encoder): ``nn.Linear`` weights at
  :data:`ENCODER_BYTES_PER_PARAM`, everything else (embeddings, norms) in the load dtype.

Planning only: nothing here loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from imagestudio.memory.sizes import ComponentSize, ModelSizes, model_sizes
from imagestudio.registry import EncoderPrecision, ModelSpec, WeightVariant

if TYPE_CHECKING:
    from collections.abc import Mapping

    from imagestudio.config import Settings

#: Bytes per ``nn.Linear`` parameter of an encoder quantized by SDNQ (estimates: int8 is one byte plus a
#: per-channel scale; uint4 is half a byte plus group scales and the rank-32 SVD correction). Exact bytes
#: come from a pre-quantized folder's headers when it is present.
ENCODER_BYTES_PER_PARAM: dict[str, float] = {"int8": 1.0, "uint4": 0.6}
#: Tokenizer, scheduler and config files of a pipeline folder (a few MB; for download estimates only).
SMALL_FILES_BYTES = 20 * 1000**2

SizeSource = Literal["file header", "published", "computed"]


@dataclass(frozen=True)
class VariantBytes:
    """What one variant weighs, and where each number comes from."""

    variant: str
    #: The transformer as stored (GGUF tensors / SDNQ tensors / None: the bf16 variant, sized by the plan).
    transformer: int | None
    transformer_source: SizeSource
    #: A pre-quantized text encoder's stored bytes (SDNQ variants); None: sized from the parameter counts.
    text_encoder: int | None = None
    #: Where the variant's files are on this machine (None: not downloaded).
    path: Path | None = None

    @property
    def present(self) -> bool:
        return self.path is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "variant": self.variant,
            "transformer_bytes": self.transformer,
            "source": self.transformer_source,
            "text_encoder_bytes": self.text_encoder,
            "path": str(self.path) if self.path else None,
        }


@cache
def _gguf_bytes_cached(path: str, mtime_ns: int, size: int) -> int:
    from gguf import GGUFReader

    reader = GGUFReader(path, "r")
    return sum(int(tensor.n_bytes) for tensor in reader.tensors)


def gguf_tensor_bytes(path: Path) -> int:
    """Stored bytes of every tensor a GGUF file declares, from its header (memory-mapped, no tensor read).

    Each tensor's bytes follow from its quantization type's block size and its shape, so a mixed file
    (unsloth's per-layer precisions) is sized exactly.
    """
    stat = path.stat()
    return _gguf_bytes_cached(str(path), stat.st_mtime_ns, stat.st_size)


def safetensors_bytes(folder: Path) -> int:
    """Bytes of the tensors the safetensors files directly in ``folder`` declare (headers only)."""
    from imagestudio.models.verify import read_safetensors_header

    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        header = read_safetensors_header(file)
        for name, entry in header.items():
            if name == "__metadata__" or not isinstance(entry, dict):
                continue
            start, end = entry["data_offsets"]
            total += int(end) - int(start)
    return total


def encoder_bytes(component: ComponentSize, precision: EncoderPrecision, dtype_bytes: int) -> float:
    """A text encoder's bytes at ``precision``: bf16 = as loaded; int8/uint4 = its linear layers quantized."""
    if precision == "bf16":
        return float(component.params * dtype_bytes)
    linear = component.linear_params
    return linear * ENCODER_BYTES_PER_PARAM[precision] + (component.params - linear) * dtype_bytes


def variant_bytes(variant: WeightVariant, path: Path | None) -> VariantBytes:
    """``variant``'s stored sizes: from its files at ``path`` when given, else the registry's figures."""
    if variant.format == "bf16":
        return VariantBytes(variant.name, None, "computed", path=path)
    if variant.format == "gguf":
        if path is not None and path.is_file():
            return VariantBytes(variant.name, gguf_tensor_bytes(path), "file header", path=path)
        return VariantBytes(variant.name, variant.transformer_bytes or None, "published")
    if path is not None and (path / "transformer").is_dir():
        encoder = path / "text_encoder"
        return VariantBytes(
            variant.name,
            safetensors_bytes(path / "transformer"),
            "file header",
            text_encoder=safetensors_bytes(encoder) if encoder.is_dir() else None,
            path=path,
        )
    return VariantBytes(variant.name, variant.transformer_bytes or None, "published")


def all_variant_bytes(spec: ModelSpec, present: Mapping[str, Path]) -> dict[str, VariantBytes]:
    """Every variant of ``spec`` sized: the ones in ``present`` (name → file or folder) from their files."""
    return {v.name: variant_bytes(v, present.get(v.name)) for v in spec.weight_variants}


def download_bytes(spec: ModelSpec, variant: WeightVariant, sizes: ModelSizes, sized: VariantBytes) -> int:
    """What a download of ``variant`` fetches (before it starts: an estimate from published sizes).

    bf16: the registry's figure for the whole pipeline. GGUF: the file plus the base repository's small
    files, VAE and bf16 text encoder (quantized on the fly when a plan asks). SDNQ: its pipeline
    repository — the quantized transformer and text encoder plus the VAE.
    """
    if variant.format == "bf16":
        return spec.download_bytes
    vae = sizes.vae.params * 2
    transformer = sized.transformer or 0
    if variant.format == "gguf":
        return int(transformer + sizes.text_encoder.params * 2 + vae + SMALL_FILES_BYTES)
    encoder = sized.text_encoder or encoder_bytes(sizes.text_encoder, variant.encoder, 2)
    return int(transformer + encoder + vae + SMALL_FILES_BYTES)


def listing_sizes(spec: ModelSpec) -> ModelSizes:
    """The counts a listing's download estimates need (``models list``, ``GET /api/models``): the shipped
    counts of a real model, read without importing torch or diffusers; measured for any other."""
    return model_sizes(spec)


def variant_listing(spec: ModelSpec, settings: Settings) -> list[dict[str, object]]:
    """Each weight variant of ``spec`` for listings (``models list``, ``GET /api/models``, the System page):
    whether it is here, where, and about what a download of it fetches."""
    from imagestudio.memory.planner import present_variant_files

    present = present_variant_files(spec, settings)
    sizes = None if spec.tiny else listing_sizes(spec)
    rows: list[dict[str, object]] = []
    for variant in spec.weight_variants:
        sized = variant_bytes(variant, present.get(variant.name))
        path = present.get(variant.name)
        rows.append(
            {
                "variant": variant.name,
                "format": variant.format,
                "state": "tiny" if spec.tiny else ("present" if path is not None else "missing"),
                "path": str(path) if path is not None and not spec.tiny else None,
                "download_bytes": 0 if sizes is None else download_bytes(spec, variant, sizes, sized),
                "repo": variant.repo_id or (spec.repo_id if not variant.quantized else None),
                "file": variant.filename,
                "quality": variant.quality,
                "quality_source": variant.quality_source,
            }
        )
    return rows
