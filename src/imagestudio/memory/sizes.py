"""Exact component sizes, from the real configs instantiated on the meta device.

The real models' configs ship with the package (``imagestudio/model_configs/<model id>/<component>.json``)
so a size is known before anything is downloaded. Sources:

* ``z-image-turbo``: ``transformer.json``, ``vae.json`` and ``text_encoder.json`` are the
  ``transformer/config.json``, ``vae/config.json`` and ``text_encoder/config.json`` of
  ``Tongyi-MAI/Z-Image-Turbo`` as reproduced verbatim by several independent projects (the FLUX VAE,
  a Qwen3-4B text encoder that the pipeline loads as ``Qwen3Model``).
* ``qwen-image-edit-2511``: the transformer config is the Qwen-Image family's (identical to the class
  defaults) with 2511's ``zero_cond_t: true``; the VAE config is the family's ``AutoencoderKLQwenImage``
  config (= class defaults with the published latent statistics); the text encoder config is
  Qwen2.5-VL-7B-Instruct's, which the Qwen-Image repositories ship under ``text_encoder/``.

Instantiating the classes on the meta device (:func:`imagestudio.models.random_weights.build_component`)
allocates no memory but takes 0.2-0.7 s of CPU per model, paid by every command that plans a load. So the
real models' counts ship as well (``model_configs/<model id>/sizes.json``, written by
:func:`write_packaged_sizes`), stamped with a digest of the configs they were measured from; a test
measures them again on the pinned libraries. Other models (the tiny ones) are measured from their own
folder's configs, once per process.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.models.configs import COMPONENTS, component_configs, packaged_config_dir
from imagestudio.models.random_weights import build_component
from imagestudio.registry import ModelSpec

if TYPE_CHECKING:
    import torch

#: Submodules that block-level group offloading must descend into to find the layer lists (diffusers'
#: ``block_modules``): the VL text encoder nests its decoder layers under ``model.language_model``, so
#: without these names the whole 8B encoder would be one group.
GROUP_BLOCK_MODULES: dict[str, list[str]] = {
    "Qwen2_5_VLForConditionalGeneration": ["model", "language_model", "visual"],
}

#: Bytes per parameter of the load dtypes.
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True)
class ComponentSize:
    """Parameter counts of one component that the memory plan needs (counts, not bytes)."""

    name: str
    class_name: str
    params: int
    #: The largest group block-level group offloading makes (one entry of a layer list).
    largest_group_params: int
    #: Parameters outside every layer list: one extra group, on the GPU for the whole forward.
    ungrouped_params: int
    #: The largest module with parameters of its own: sequential (leaf) offloading's unit.
    largest_leaf_params: int
    #: Parameters that layerwise casting stores in fp8 (the rest stay in the compute dtype).
    castable_params: int
    #: The largest layer layerwise casting stores in fp8: it is upcast to the compute dtype while it runs.
    largest_castable_params: int
    #: Parameters of ``nn.Linear`` layers (what NF4/int8 quantization replaces).
    linear_params: int


@dataclass(frozen=True)
class ModelSizes:
    model_id: str
    components: dict[str, ComponentSize]

    @property
    def transformer(self) -> ComponentSize:
        return self.components["transformer"]

    @property
    def text_encoder(self) -> ComponentSize:
        return self.components["text_encoder"]

    @property
    def vae(self) -> ComponentSize:
        return self.components["vae"]

    @property
    def total_params(self) -> int:
        return sum(c.params for c in self.components.values())


def _block_layout(module: torch.nn.Module, block_modules: set[str]) -> tuple[int, int]:
    """(largest group, ungrouped params) as diffusers' block-level group offloading would split ``module``."""
    import torch

    largest = 0
    grouped: set[int] = set()

    def visit(node: torch.nn.Module) -> None:
        nonlocal largest
        for child_name, child in node.named_children():
            if child_name in block_modules:
                visit(child)
            elif isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)):
                for block in child:
                    params = list(block.parameters())
                    largest = max(largest, sum(p.numel() for p in params))
                    grouped.update(id(p) for p in params)

    visit(module)
    ungrouped = sum(p.numel() for p in module.parameters() if id(p) not in grouped)
    return largest, ungrouped


def _cast_counts(module: torch.nn.Module) -> tuple[int, int]:
    """(params stored in fp8, largest such layer) after diffusers' layerwise casting of ``module``."""
    import torch

    enable = getattr(module, "enable_layerwise_casting", None)  # diffusers models have it, transformers' not
    if enable is not None:
        enable(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
    else:
        from diffusers.hooks.layerwise_casting import apply_layerwise_casting

        apply_layerwise_casting(module, storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
    castable = 0
    largest = 0
    for sub in module.modules():
        own = [p for p in sub.parameters(recurse=False) if p.dtype == torch.float8_e4m3fn]
        size = sum(p.numel() for p in own)
        castable += size
        largest = max(largest, size)
    return castable, largest


def measure_component(family: str, name: str, config: dict[str, Any]) -> ComponentSize:
    """Instantiate one component on meta and count what the memory plan needs."""
    import torch

    module = build_component(family, name, config)
    class_name = type(module).__name__
    params = sum(p.numel() for p in module.parameters())
    largest_group, ungrouped = _block_layout(module, set(GROUP_BLOCK_MODULES.get(class_name, [])))
    largest_leaf = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in module.modules())
    linear = sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))
    castable, largest_castable = _cast_counts(module)
    return ComponentSize(
        name=name,
        class_name=class_name,
        params=params,
        largest_group_params=largest_group,
        ungrouped_params=ungrouped,
        largest_leaf_params=largest_leaf,
        castable_params=castable,
        largest_castable_params=largest_castable,
        linear_params=linear,
    )


#: The packaged counts' file, beside the configs they were measured from.
SIZES_FILE = "sizes.json"


@cache
def _sizes_from_configs(model_id: str, family: str, configs_json: str) -> ModelSizes:
    configs = json.loads(configs_json)
    return ModelSizes(
        model_id=model_id,
        components={name: measure_component(family, name, configs[name]) for name in COMPONENTS},
    )


def configs_digest(configs: dict[str, dict[str, Any]]) -> str:
    """What a packaged sizes file was measured from: a digest of the three configs."""
    return hashlib.sha256(json.dumps(configs, sort_keys=True).encode("utf-8")).hexdigest()


def read_sizes_file(path: Path, model_id: str, configs: dict[str, dict[str, Any]]) -> ModelSizes | None:
    """The counts stored at ``path``, or None when there are none or they were measured from other configs
    (then the caller measures: a stale file can cost time, never a wrong plan)."""
    if not path.is_file():
        return None
    stored = json.loads(path.read_text(encoding="utf-8"))
    if stored.get("configs_sha256") != configs_digest(configs):
        return None
    return ModelSizes(
        model_id=model_id,
        components={name: ComponentSize(**stored["components"][name]) for name in COMPONENTS},
    )


@cache
def packaged_sizes(spec: ModelSpec) -> ModelSizes | None:
    """The shipped counts of a real model (no torch, no instantiation), if they match its shipped configs;
    read once per process, as the planner asks for them at every plan."""
    folder = packaged_config_dir(spec.id)
    if folder is None:
        return None
    return read_sizes_file(folder / SIZES_FILE, spec.id, component_configs(spec))


def measured_sizes(spec: ModelSpec, folder: Path | None = None) -> ModelSizes:
    """Counts measured now by instantiating on meta (cached per process): the source of every stored count."""
    configs = component_configs(spec, folder)
    return _sizes_from_configs(spec.id, spec.family, json.dumps(configs, sort_keys=True))


def model_sizes(spec: ModelSpec, folder: Path | None = None) -> ModelSizes:
    """Exact parameter counts of ``spec``'s components: the shipped ones of a real model, else measured.

    Real models are sized from the packaged configs; others need ``folder`` (their diffusers folder).
    """
    return packaged_sizes(spec) or measured_sizes(spec, folder)


def write_packaged_sizes(spec: ModelSpec) -> Path:
    """Measure a real model and store its counts beside its configs: run for each real model after changing
    a config or the pinned diffusers/transformers (tests/memory/test_packaged_sizes.py fails until then)."""
    folder = packaged_config_dir(spec.id)
    if folder is None:
        raise ValueError(f"{spec.id} has no packaged configs")
    configs = component_configs(spec)
    sizes = measured_sizes(spec)
    record = {
        "configs_sha256": configs_digest(configs),
        "components": {name: asdict(sizes.components[name]) for name in COMPONENTS},
    }
    path = folder / SIZES_FILE
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
