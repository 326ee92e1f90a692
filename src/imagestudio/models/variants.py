"""Where a weight variant's files are: the one search order loading, hashing and listing follow.

A variant (:class:`~imagestudio.registry.WeightVariant`) is read from:

* ``bf16`` — the model's own folder, found by :mod:`.locate`;
* a GGUF variant — one ``.gguf`` transformer file, plus the base model's folder for everything else
  (configs, tokenizer, scheduler, VAE, text encoder). The transformer's ``config.json`` comes from that
  local folder, never from the hub: Qwen-Image-Edit-2511's ``zero_cond_t: true`` is in its config only;
* an SDNQ variant — a whole pipeline folder whose transformer (and text encoder) are stored quantized.

The GGUF file / SDNQ folder is searched, first hit wins:

1. ``models.<id>.weights_paths.<variant>`` in config.yaml (a ``.gguf`` file or a folder holding it; an
   SDNQ pipeline folder) — nothing else is searched then;
2. ``<models_dir>/<id>-<variant>/`` (a plain download with ``--to``; the tiny variants are built there on
   first use);
3. the Hugging Face cache's snapshot of the variant's repository (``hf download REPO FILE`` puts a GGUF
   file at ``models--owner--name/snapshots/<commit>/FILE``).

Only the disk is read here (and the tiny variants written); no torch unless a tiny variant is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from imagestudio.models import cache
from imagestudio.models.files import MODEL_INDEX
from imagestudio.models.locate import find_model_dir
from imagestudio.registry import ModelSpec, WeightVariant

if TYPE_CHECKING:
    from imagestudio.config import Settings

VariantSource = Literal["config", "models_dir", "hub_cache", "base"]


@dataclass(frozen=True)
class VariantFiles:
    """The files one variant of one model loads from."""

    model_id: str
    variant: WeightVariant
    #: The folder ``from_pretrained`` reads the pipeline from: the base model's folder (``bf16`` and GGUF
    #: variants, whose transformer is replaced) or the SDNQ pipeline folder.
    pipeline_dir: Path
    #: GGUF variants: the transformer file.
    gguf_file: Path | None
    #: Where the variant's own files were found (``base`` for ``bf16``).
    source: VariantSource

    @property
    def transformer_config_dir(self) -> Path:
        """The local folder holding the transformer's ``config.json``."""
        return self.pipeline_dir / "transformer"

    def transformer_files(self) -> list[Path]:
        """The transformer's weight files as they are loaded (what the images' ``Model hash`` is of)."""
        if self.gguf_file is not None:
            return [self.gguf_file]
        folder = self.pipeline_dir / "transformer"
        return sorted(folder.glob("*.safetensors")) if folder.is_dir() else []

    def describe(self) -> str:
        where = self.gguf_file or self.pipeline_dir
        return f"{self.model_id} {self.variant.name} ({where})"


def variant_dir(spec: ModelSpec, variant: WeightVariant, settings: Settings) -> Path:
    """The plain folder a variant lives in under the models directory: ``<models_dir>/<id>-<variant>``."""
    return settings.models_dir / f"{spec.id}-{variant.name}"


def gguf_filename(spec: ModelSpec, variant: WeightVariant) -> str:
    """The GGUF file's name: the published one, or for a tiny model ``<id>-<QUANT>.gguf``."""
    if variant.filename:
        return variant.filename
    return f"{spec.id}-{variant.quant_type or variant.name}.gguf"


def _gguf_in(where: Path, filename: str) -> Path | None:
    if where.is_file():
        return where
    candidate = where / filename
    return candidate if candidate.is_file() else None


def _pipeline_in(where: Path) -> Path | None:
    return where if (where / MODEL_INDEX).is_file() else None


def locate_variant(
    spec: ModelSpec, variant: WeightVariant, settings: Settings, cache_dir: Path | None = None
) -> tuple[Path | None, VariantSource | None]:
    """The variant's own file (GGUF) or folder (SDNQ) if present, and where it was found.

    ``bf16`` is not searched here (it is the model's folder, :mod:`.locate`). A configured path that
    holds nothing gives ``(None, "config")``.
    """
    if not variant.quantized:
        return None, None
    find = (
        (lambda where: _gguf_in(where, gguf_filename(spec, variant)))
        if variant.format == "gguf"
        else _pipeline_in
    )
    configured = settings.model(spec.id).weights_paths.get(variant.name)
    if configured is not None:
        return find(configured), "config"
    found = find(variant_dir(spec, variant, settings))
    if found is not None:
        return found, "models_dir"
    if variant.repo_id is not None:
        snapshot = cache.cached_snapshot(variant.repo_id, None, cache_dir)
        if snapshot is not None and (found := find(snapshot)) is not None:
            return found, "hub_cache"
    return None, None


def variant_files(
    spec: ModelSpec,
    variant: WeightVariant | str,
    settings: Settings,
    *,
    build_tiny: bool = True,
    cache_dir: Path | None = None,
) -> VariantFiles | None:
    """Where ``variant``'s files are, or None when some of them are not on this machine.

    A GGUF variant also needs the base model's folder (configs, tokenizer, VAE, text encoder); its own
    transformer weights there are not needed. A tiny model's variants are built on first use (unless
    ``build_tiny`` is false).
    """
    if isinstance(variant, str):
        variant = spec.variant(variant)
    if not variant.quantized:
        folder = find_model_dir(spec, settings, build_tiny=build_tiny)
        return None if folder is None else VariantFiles(spec.id, variant, folder, None, "base")
    if spec.tiny and build_tiny and variant.name not in settings.model(spec.id).weights_paths:
        from imagestudio.models.tiny_variants import ensure_tiny_variant

        ensure_tiny_variant(spec, variant, variant_dir(spec, variant, settings), settings)
    found, source = locate_variant(spec, variant, settings, cache_dir)
    if found is None or source is None:
        return None
    if variant.format == "sdnq":
        return VariantFiles(spec.id, variant, found, None, source)
    base = find_model_dir(spec, settings, build_tiny=build_tiny)
    if base is None or not (base / "transformer" / "config.json").is_file():
        return None
    return VariantFiles(spec.id, variant, base, found, source)


def present_variants(spec: ModelSpec, settings: Settings) -> list[WeightVariant]:
    """The variants whose files are all on this machine, in registry order (tiny ones count as present)."""
    return [
        v
        for v in spec.weight_variants
        if spec.tiny or variant_files(spec, v, settings, build_tiny=False) is not None
    ]


def auto_variant(spec: ModelSpec, settings: Settings) -> WeightVariant:
    """``weights: auto`` where no memory plan is made (the prompt enhancer's encoder): ``bf16`` if present,
    else the first present one in registry order.

    Jobs run the memory planner's choice instead (:meth:`imagestudio.memory.planner.MemoryPlanner.
    variant_choices`, carried by the plan: see :mod:`imagestudio.engine.weights`). With nothing present it
    is ``bf16``, whose absence the loader reports with the download command.
    """
    present = present_variants(spec, settings)
    return present[0] if present else spec.weight_variants[0]


def requested_variant(spec: ModelSpec, settings: Settings, requested: str | None) -> WeightVariant:
    """The variant a request runs: its ``weights`` if given, else ``models.<id>.weights``; ``auto`` (or
    nothing) by :func:`auto_variant`. An unknown name is a one-line ``InvalidRequest``."""
    name = requested or settings.model(spec.id).weights
    return auto_variant(spec, settings) if name == "auto" else spec.variant(name)
