"""The memory plan: sizes + hardware + request → the fastest way to run that fits, and why.

A plan combines four choices, each one of diffusers' own mechanisms:

* **profile** — where the weights live while a job runs:
  ``full`` (everything on the accelerator), ``model_offload`` (each component visits the accelerator in
  turn: one transfer per component per image), ``group_offload`` (transformer and text encoder stream
  in block by block from pinned RAM on a side CUDA stream, overlapping the transfer with compute; the
  VAE stays resident), ``sequential`` (single layers stream in; the last resort);
* **weights** — how the transformer is stored: ``bf16`` (the load dtype), ``fp8`` (layerwise casting:
  stored in float8, computed in bf16), ``int8`` (torchao) or ``nf4`` (bitsandbytes), the last two only
  where the package is installed;
* **VAE tiling** — decoding (and encoding) tile by tile, turned on only when the untiled VAE would not fit;
* **attention backend** — PyTorch SDPA unless the config names an installed alternative.

Candidates are ranked profile first (full < model_offload < group_offload < sequential in PCIe traffic
per image), then weights in order of quality (bf16, fp8, int8, nf4), then pinned before unpinned memory,
then untiled before tiled; the first candidate whose predicted peak fits the card (minus
``device.vram_reserve_gb``) and the RAM wins. A bigger card therefore never gets a slower plan.
One exception trades quality for traffic: when the winner streams its weights every step (group or
sequential offload) and another weight *variant* that fits moves at most :data:`FAR_LESS_TRAFFIC` of its
bytes per image, that variant runs instead (repeated until none does; see :func:`prefer_less_traffic`).

Predicted peak accelerator memory = max over the job's phases (text encoding, VAE encoding of inputs,
denoising, VAE decoding; the hires pass's upscaling) of (weights resident in that phase + that phase's
activations, from :mod:`.activations`, + a ControlNet or upscaler working beside the pipeline, from
:mod:`.extras`) + the CUDA context allowance. Predicted peak RAM = the larger of the load (every
component is read into RAM in its load dtype first) and the steady state (offloaded weights wait in RAM;
group offloading briefly holds a pinned copy of the largest component's blocks next to the original) +
the process allowance. All sizes are GiB (1024³ bytes), the unit cards and nvidia-smi report.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.errors import ConfigError
from imagestudio.memory.activations import (
    ACTIVATIONS,
    CUDA_CONTEXT_BYTES,
    PROCESS_RAM_BYTES,
    ActivationModel,
    Workload,
    phase_activations,
)
from imagestudio.memory.sizes import DTYPE_BYTES, ComponentSize, ModelSizes
from imagestudio.memory.variant_sizes import VariantBytes, encoder_bytes

if TYPE_CHECKING:
    from imagestudio.config import DeviceSettings
    from imagestudio.hardware import Hardware
    from imagestudio.registry import EncoderPrecision, ModelSpec, WeightVariant

Profile = Literal["full", "model_offload", "group_offload", "sequential"]
Weights = Literal["bf16", "fp8", "int8", "nf4"]

PROFILES: tuple[Profile, ...] = ("full", "model_offload", "group_offload", "sequential")
WEIGHTS: tuple[Weights, ...] = ("bf16", "fp8", "int8", "nf4")
PHASES = ("text_encode", "vae_encode", "denoise", "vae_decode")

GIB = 1024**3

#: Packages behind the quantized storages and attention backends (looked up, never imported, here).
QUANTIZATION_PACKAGES = {"nf4": "bitsandbytes", "int8": "torchao"}
ATTENTION_PACKAGES = {"flash": "flash_attn", "sage": "sageattention", "xformers": "xformers"}
#: Packages that read the pre-quantized variants (and, for ``sdnq``, quantize a text encoder on the fly).
VARIANT_PACKAGES = {"gguf": "gguf", "sdnq": "sdnq"}
ENCODER_PRECISIONS: tuple[EncoderPrecision, ...] = ("bf16", "int8", "uint4")
#: Config name → diffusers ``set_attention_backend`` name.
ATTENTION_BACKENDS = {"sdpa": "native", "flash": "flash", "sage": "sage", "xformers": "xformers"}

#: Profiles that move the transformer over PCIe on every step (traffic grows with steps × forwards),
#: unlike full (none) and model offload (each component once per image).
STREAMING_PROFILES: tuple[Profile, ...] = ("group_offload", "sequential")
#: A smaller weight variant replaces a streaming plan when it moves at most this share of its bytes per
#: image. Streamed bytes are the one speed cost predicted without a GPU; a third less is where it plainly
#: outweighs the quality step (on Qwen-Image-Edit-2511: Q8_0 → Q4_K_M, 0.61; Q6_K 0.78 and Q5_K_M 0.69 are
#: too close to Q8_0 to give up its quality for). Equal traffic keeps the better quality.
FAR_LESS_TRAFFIC = 2 / 3

#: Bytes per parameter of quantized linear layers: NF4 is 4 bits plus one float32 absmax per 64 weights;
#: int8 weight-only is one byte plus a per-channel scale (negligible).
QUANTIZED_BYTES_PER_PARAM = {"nf4": 0.5625, "int8": 1.0}

#: Accelerator kinds each profile can run on. Offload needs a separate accelerator memory to save: on
#: MPS (unified memory) model offload still frees Metal's working set; group offload's side streams and
#: accelerate's sequential hooks need CUDA here. On a CPU-only machine every plan is "full on the CPU".
PROFILE_DEVICES: dict[Profile, tuple[str, ...]] = {
    "full": ("cuda", "mps", "cpu"),
    "model_offload": ("cuda", "mps"),
    "group_offload": ("cuda",),
    "sequential": ("cuda",),
}


def installed(package: str) -> bool:
    """Whether ``package`` can be imported, without importing it."""
    return importlib.util.find_spec(package) is not None


@dataclass(frozen=True)
class Environment:
    """What optional packages this Python has: quantized storages and attention backends."""

    quantization: frozenset[str] = frozenset()
    attention: frozenset[str] = frozenset()
    #: Variant formats whose package is installed (``gguf``, ``sdnq``); ``sdnq`` also quantizes encoders.
    variants: frozenset[str] = frozenset()


def detect_environment() -> Environment:
    return Environment(
        quantization=frozenset(k for k, pkg in QUANTIZATION_PACKAGES.items() if installed(pkg)),
        attention=frozenset(k for k, pkg in ATTENTION_PACKAGES.items() if installed(pkg)),
        variants=frozenset(k for k, pkg in VARIANT_PACKAGES.items() if installed(pkg)),
    )


@dataclass(frozen=True)
class MemoryPlan:
    """One way to run a model on a machine, with its predicted cost. Sizes in GiB."""

    model_id: str
    accelerator: str
    profile: Profile
    weights: Weights
    vae_tiling: bool
    #: Group offload only: every block pinned in RAM up front (fastest) rather than pinned on the fly per
    #: transfer (diffusers' ``low_cpu_mem_usage``: no second copy of the weights while setting up).
    pinned: bool
    #: diffusers ``set_attention_backend`` name ("native" = PyTorch SDPA).
    attention_backend: str
    compute_dtype: str
    predicted_peak_vram_gb: float
    predicted_peak_ram_gb: float
    #: Peak accelerator memory (weights + activations) of each phase of the job.
    phases_gb: dict[str, float]
    #: What the plan may use: free accelerator memory minus the reserve; None on a CPU-only machine.
    vram_budget_gb: float | None
    ram_budget_gb: float
    #: Weights that cross the host↔device link per image (0 for full).
    transfer_gb_per_image: float
    workload: Workload
    why: str = ""
    steps_down_from: tuple[str, ...] = field(default=())
    #: The same predictions in bytes, unrounded: what step-down compares.
    peak_vram_bytes: int = 0
    peak_ram_bytes: int = 0
    #: The registry weight variant the plan loads (``bf16``, ``gguf-q4_k_m``, ``sdnq-uint4`` …): which files.
    #: ``weights`` above is how a ``bf16`` variant's transformer is stored once loaded (on-the-fly casting
    #: or quantization); a pre-quantized variant is stored as its files are.
    variant: str = "bf16"
    #: The text encoder's precision while it runs (SDNQ int8/uint4 on the fly, or as a variant ships it).
    text_encoder_weights: EncoderPrecision = "bf16"
    #: Bytes of the transformer and the text encoder as this plan stores them (GGUF: its tensors' bytes
    #: from the file header when present, else the published file size).
    transformer_bytes: int = 0
    text_encoder_bytes: int = 0
    #: The better-quality variant this plan was preferred over for its PCIe traffic, and that plan's
    #: traffic per image (GiB); empty when the plan is simply the best that fits.
    preferred_over: str = ""
    preferred_over_transfer_gb: float = 0.0

    @property
    def fits_vram(self) -> bool:
        return self.vram_budget_gb is None or self.predicted_peak_vram_gb <= self.vram_budget_gb

    @property
    def fits_ram(self) -> bool:
        return self.predicted_peak_ram_gb <= self.ram_budget_gb

    @property
    def fits(self) -> bool:
        return self.fits_vram and self.fits_ram

    @property
    def placement(self) -> tuple[str, str, bool, str, str, str]:
        """What a loaded pipeline is bound to: changing any of it means loading the model again."""
        return (
            self.profile,
            self.weights,
            self.pinned,
            self.attention_backend,
            self.variant,
            self.text_encoder_weights,
        )

    @property
    def stored_weights(self) -> str:
        """How the weights are stored: "bf16" means "as loaded", so say float32 when the config loads that."""
        return "float32" if (self.weights == "bf16" and self.compute_dtype == "float32") else self.weights

    @property
    def pinned_on_the_fly(self) -> bool:
        return self.profile == "group_offload" and not self.pinned

    def describe(self) -> str:
        """``group_offload, bf16 weights, VAE tiling`` — the plan in a few words."""
        weights = self.variant if self.variant != "bf16" else self.stored_weights
        parts = [self.profile, f"{weights} weights"]
        if self.text_encoder_weights != "bf16":
            parts.append(f"{self.text_encoder_weights} text encoder")
        if self.pinned_on_the_fly:
            parts.append("pinned on the fly")
        if self.vae_tiling:
            parts.append("VAE tiling")
        if self.attention_backend != "native":
            parts.append(f"{self.attention_backend} attention")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "profile": self.profile,
            "weights": self.weights,
            "variant": self.variant,
            "text_encoder_weights": self.text_encoder_weights,
            "transformer_gb": round(self.transformer_bytes / GIB, 2),
            "text_encoder_gb": round(self.text_encoder_bytes / GIB, 2),
            "vae_tiling": self.vae_tiling,
            "pinned": self.pinned,
            "attention_backend": self.attention_backend,
            "compute_dtype": self.compute_dtype,
            "predicted_peak_vram_gb": self.predicted_peak_vram_gb,
            "predicted_peak_ram_gb": self.predicted_peak_ram_gb,
            "phases_gb": dict(self.phases_gb),
            "vram_budget_gb": self.vram_budget_gb,
            "ram_budget_gb": self.ram_budget_gb,
            "transfer_gb_per_image": self.transfer_gb_per_image,
            "preferred_over": (
                {"variant": self.preferred_over, "transfer_gb_per_image": self.preferred_over_transfer_gb}
                if self.preferred_over
                else None
            ),
            "fits": self.fits,
            "fits_vram": self.fits_vram,
            "fits_ram": self.fits_ram,
            "why": self.why,
        }


# ------------------------------------------------------------------------------------------ bytes


def transformer_bytes(component: ComponentSize, weights: Weights, dtype_bytes: int) -> float:
    """Bytes of the transformer stored as ``weights`` (only the transformer is ever stored below bf16)."""
    if weights == "fp8":
        return component.castable_params + (component.params - component.castable_params) * dtype_bytes
    if weights in QUANTIZED_BYTES_PER_PARAM:
        quantized = component.linear_params
        return quantized * QUANTIZED_BYTES_PER_PARAM[weights] + (component.params - quantized) * dtype_bytes
    return component.params * dtype_bytes


def _group_bytes(component: ComponentSize, stored: float, streams: bool) -> float:
    """Accelerator bytes of a group-offloaded component while it runs: its current block (and, with a
    side stream, the prefetched next one) plus everything outside the block lists."""
    ratio = stored / max(1, component.params)  # bytes per parameter as stored
    blocks = (2 if streams else 1) * component.largest_group_params
    return (blocks + component.ungrouped_params) * ratio


@dataclass(frozen=True)
class StoredBytes:
    """Bytes of each component as a candidate stores them while the job runs."""

    text_encoder: float
    vae: float
    transformer: float


def _resident(
    profile: Profile,
    sizes: ModelSizes,
    stored: StoredBytes,
    dtype_bytes: int,
    streams: bool,
    has_inputs: bool,
) -> dict[str, float]:
    """Weights on the accelerator during each phase."""
    te, vae, tr = stored.text_encoder, stored.vae, stored.transformer
    if profile == "full":
        return dict.fromkeys(PHASES, te + vae + tr)
    if profile == "model_offload":
        # accelerate's hooks offload a component's *predecessor in the sequence* when it starts:
        # text_encoder → transformer → vae, so the text encoder is still there while the VAE encodes
        # inputs, and the VAE stays while the transformer runs.
        return {
            "text_encode": te,
            "vae_encode": te + vae,
            "denoise": tr + (vae if has_inputs else 0.0),
            "vae_decode": vae,
        }
    if profile == "group_offload":
        return {
            "text_encode": vae + _group_bytes(sizes.text_encoder, te, streams),
            "vae_encode": vae,
            "denoise": vae + _group_bytes(sizes.transformer, tr, streams),
            "vae_decode": vae,
        }
    # A quantized component's largest leaf shrinks with it (bytes per parameter as stored).
    ratio = {
        "text_encoder": te / max(1, sizes.text_encoder.params),
        "transformer": tr / max(1, sizes.transformer.params),
        "vae": float(dtype_bytes),
    }
    leaf = {name: c.largest_leaf_params * ratio[name] for name, c in sizes.components.items()}
    return {
        "text_encode": leaf["text_encoder"],
        "vae_encode": leaf["vae"],
        "denoise": leaf["transformer"],
        "vae_decode": leaf["vae"],
    }


def _forwards_per_image(spec_family: str, workload: Workload) -> int:
    # Qwen edit's true CFG runs the transformer twice per step; Z-Image batches CFG into one call.
    return workload.steps * (2 if (workload.cfg and spec_family == "qwen-image-edit") else 1)


def _transfer_bytes(profile: Profile, stored: StoredBytes, forwards: int) -> float:
    te, vae, tr = stored.text_encoder, stored.vae, stored.transformer
    if profile == "full":
        return 0.0
    if profile == "model_offload":
        return te + tr + vae
    if profile == "group_offload":
        return te + tr * forwards
    return te + vae + tr * forwards


# --------------------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class Candidate:
    profile: Profile
    weights: Weights
    pinned: bool
    vae_tiling: bool
    #: The registry weight variant (which files) and the text encoder's precision.
    variant: str = "bf16"
    encoder: EncoderPrecision = "bf16"


def stored_bytes(
    candidate: Candidate, sizes: ModelSizes, dtype_bytes: int, sized: VariantBytes | None
) -> StoredBytes:
    """Each component's bytes under ``candidate``: a pre-quantized variant as its files (or the published
    figure) say, the bf16 variant as the plan's ``weights`` store it, the encoder at its precision."""
    if candidate.variant != "bf16" and sized is not None and sized.transformer:
        transformer = float(sized.transformer)
    else:
        transformer = transformer_bytes(sizes.transformer, candidate.weights, dtype_bytes)
    if sized is not None and sized.text_encoder and candidate.variant != "bf16":
        text_encoder = float(sized.text_encoder)
    else:
        text_encoder = encoder_bytes(sizes.text_encoder, candidate.encoder, dtype_bytes)
    return StoredBytes(text_encoder, float(sizes.vae.params * dtype_bytes), transformer)


def evaluate(
    candidate: Candidate,
    *,
    model_id: str,
    family: str,
    sizes: ModelSizes,
    hardware: Hardware,
    workload: Workload,
    compute_dtype: str,
    reserve_gb: float,
    attention_backend: str = "native",
    variant_sizes: Mapping[str, VariantBytes] | None = None,
) -> MemoryPlan:
    """Predict the peak memory of running ``workload`` with ``candidate`` on ``hardware``."""
    dtype_bytes = DTYPE_BYTES[compute_dtype]
    model: ActivationModel = ACTIVATIONS[family]
    acts = phase_activations(model, workload, tiled=candidate.vae_tiling, dtype_bytes=dtype_bytes)
    # On CUDA, group offload always prefetches the next block on a side stream (pinned up front, or
    # pinned on the fly per transfer when RAM is short), so two blocks are resident at a time.
    streams = candidate.profile == "group_offload" and hardware.accelerator == "cuda"
    sized = (variant_sizes or {}).get(candidate.variant)
    weights = stored_bytes(candidate, sizes, dtype_bytes, sized)
    resident = _resident(candidate.profile, sizes, weights, dtype_bytes, streams, workload.input_images > 0)
    upcast = 0.0
    # A stored layer is widened to the compute dtype while it runs (fp8 casting, GGUF/SDNQ dequantizing).
    if candidate.weights != "bf16" or candidate.variant != "bf16":
        upcast = sizes.transformer.largest_castable_params * dtype_bytes
    activation = {
        "text_encode": acts.text_encode,
        "vae_encode": acts.vae_encode,
        "denoise": acts.denoise + upcast,
        "vae_decode": acts.vae_decode,
    }
    if workload.input_images == 0:
        activation["vae_encode"] = 0
    if candidate.encoder != "bf16":  # SDNQ widens one quantized encoder layer at a time as well
        activation["text_encode"] += sizes.text_encoder.largest_castable_params * dtype_bytes
    # Quantized files and load-time quantization arrive in RAM already small (SDNQ quantizes the encoder
    # layer by layer while loading); fp8 casting happens only after a bf16 load.
    te, vae, tr_stored = weights.text_encoder, weights.vae, weights.transformer
    tr_loaded = (
        tr_stored
        if candidate.weights in QUANTIZED_BYTES_PER_PARAM or candidate.variant != "bf16"
        else sizes.transformer.params * dtype_bytes
    )
    # The models beside the pipeline (memory/extras.py): the ControlNet while denoising, the hires pass's
    # upscaler once the first pass is decoded (with the weights of that phase still resident).
    beside = {"denoise": float(workload.controlnet_bytes)}
    upscale: dict[str, float] = {}
    if workload.detector_bytes:  # the map is made before the prompt is encoded
        upscale["detect"] = resident["text_encode"] + workload.detector_bytes
    if workload.upscaler_bytes:
        upscale["upscale"] = resident["vae_decode"] + workload.upscaler_bytes
    extras = workload.controlnet_bytes + workload.upscaler_bytes + workload.detector_bytes
    load_ram = te + vae + tr_loaded + extras
    if hardware.accelerator == "cpu":
        phases = dict.fromkeys((*PHASES, *upscale), 0.0)
        peak_vram = 0.0
        peak_ram = load_ram + max(activation.values()) + PROCESS_RAM_BYTES
    else:
        phases = {**{p: resident[p] + activation[p] + beside.get(p, 0.0) for p in PHASES}, **upscale}
        context = CUDA_CONTEXT_BYTES if hardware.accelerator == "cuda" else 0
        peak_vram = max(phases.values()) + context
        # Offloaded weights wait in RAM (fp8 ones in fp8: the cast happens right after loading).
        steady = 0.0 if candidate.profile == "full" else te + vae + tr_stored
        if candidate.profile == "group_offload" and candidate.pinned:
            # Pinned copies of every block group are made while the originals still exist.
            biggest = max(sizes.transformer, sizes.text_encoder, key=lambda c: c.params)
            stored = tr_stored if biggest is sizes.transformer else te
            steady += (biggest.params - biggest.ungrouped_params) * stored / max(1, biggest.params)
        peak_ram = max(load_ram, steady) + PROCESS_RAM_BYTES
    vram_budget = None
    if hardware.accelerator != "cpu":
        vram_budget = round(hardware.vram_free / GIB - reserve_gb, 2)
    forwards = _forwards_per_image(family, workload)
    return MemoryPlan(
        model_id=model_id,
        accelerator=hardware.accelerator,
        profile=candidate.profile,
        weights=candidate.weights,
        vae_tiling=candidate.vae_tiling,
        pinned=candidate.pinned,
        attention_backend=attention_backend,
        compute_dtype=compute_dtype,
        predicted_peak_vram_gb=round(peak_vram / GIB, 2),
        predicted_peak_ram_gb=round(peak_ram / GIB, 2),
        phases_gb={p: round(v / GIB, 2) for p, v in phases.items()},
        vram_budget_gb=vram_budget,
        ram_budget_gb=round(hardware.ram_available / GIB, 2),
        transfer_gb_per_image=round(_transfer_bytes(candidate.profile, weights, forwards) / GIB, 1),
        workload=workload,
        peak_vram_bytes=int(peak_vram),
        peak_ram_bytes=int(peak_ram),
        variant=candidate.variant,
        text_encoder_weights=candidate.encoder,
        transformer_bytes=int(tr_stored),
        text_encoder_bytes=int(te),
    )


# ---------------------------------------------------------------------------------------- choose


def _allowed_weights(requested: str, accelerator: str, environment: Environment) -> list[Weights]:
    if requested != "auto":
        weights: Weights = requested  # type: ignore[assignment]
        if weights in QUANTIZATION_PACKAGES and weights not in environment.quantization:
            raise ConfigError(
                f"device.weights is {weights} but {QUANTIZATION_PACKAGES[weights]} is not installed: "
                f"pip install {QUANTIZATION_PACKAGES[weights]} — or set device.weights: auto",
                param="device.weights",
                code="config_needs_package",
                details={
                    "key": "device.weights",
                    "value": weights,
                    "package": QUANTIZATION_PACKAGES[weights],
                },
            )
        if weights == "fp8" and accelerator == "mps":
            raise ConfigError(
                "device.weights is fp8 but Apple MPS has no float8 type",
                param="device.weights",
                code="config_fp8_mps",
            )
        return [weights]
    if accelerator == "cpu" or accelerator == "mps":
        return ["bf16"]
    # bitsandbytes NF4 needs CUDA; both quantizers are only offered where their package is installed.
    return [w for w in WEIGHTS if w in ("bf16", "fp8") or w in environment.quantization]


def check_variant(
    spec: ModelSpec,
    name: str,
    device_settings: DeviceSettings,
    environment: Environment,
    *,
    requested: bool = False,
) -> WeightVariant:
    """The variant a request's ``weights`` (``requested``) or ``models.<id>.weights`` names, refused in
    one line where it cannot run with the rest of the config: an :class:`InvalidRequest` for a request's,
    a :class:`ConfigError` for the config's."""
    variant = spec.variant(name)
    if not variant.quantized:
        return variant
    key = "weights" if requested else f"models.{spec.id}.weights"
    what = f"{spec.id} {name}" if requested else f"{key} is {name}:"
    package = VARIANT_PACKAGES[variant.format]
    if variant.format not in environment.variants:
        problem = (
            f"{what} needs the {package} package, which is not installed: pip install {package}",
            "config_needs_package",
            {"package": package},
        )
    elif device_settings.weights != "auto":
        problem = (
            f"device.weights {device_settings.weights} cannot apply to {spec.id} {name}, which is stored "
            "quantized already: set device.weights: auto, or run the bf16 weights"
            + ("" if requested else f" ({key})"),
            "weights_conflict",
            {"device_weights": device_settings.weights},
        )
    elif device_settings.requested_profile == "sequential":
        problem = (
            f"{what} cannot run with device.memory_profile sequential (only model and group offload run "
            "quantized weights here): set device.memory_profile: auto, or run the bf16 weights",
            "sequential_quantized",
            {},
        )
    else:
        return variant
    message, code, extra = problem
    details: dict[str, object] = {"key": key, "model": spec.id, "weights": name, **extra}
    if requested:
        from imagestudio.errors import InvalidRequest

        raise InvalidRequest(message, param="weights", code=code, details=details)
    raise ConfigError(message, param=key, code=f"config_{code}", details=details)


def attention_backend_for(setting: str, environment: Environment) -> str:
    """The diffusers backend name for ``device.attention_backend`` (refusing one that is not installed)."""
    if setting in ("auto", "sdpa"):
        return "native"
    if setting not in environment.attention:
        raise ConfigError(
            f"device.attention_backend is {setting} but {ATTENTION_PACKAGES[setting]} is not installed; "
            "install it or set device.attention_backend: auto (PyTorch SDPA)",
            param="device.attention_backend",
            code="config_needs_package",
            details={
                "key": "device.attention_backend",
                "value": setting,
                "package": ATTENTION_PACKAGES[setting],
            },
        )
    return ATTENTION_BACKENDS[setting]


@dataclass(frozen=True)
class Storage:
    """One way to store the transformer (a variant's files, with on-the-fly ``weights`` for ``bf16``) and
    the text encoder precisions it may run with."""

    variant: str
    weights: Weights
    encoders: tuple[EncoderPrecision, ...] = ("bf16",)


def storage_options(
    spec: ModelSpec,
    variants: Sequence[str],
    weights: Sequence[Weights],
    environment: Environment,
    sizes: ModelSizes,
    variant_sizes: Mapping[str, VariantBytes],
    dtype_bytes: int,
) -> list[Storage]:
    """The storages of ``variants`` in order of quality: most stored bytes per parameter first.

    More bits per weight is the one quality order that covers GGUF types, SDNQ and on-the-fly casting
    alike (Q8_0 > fp8 > Q6_K > … > Q3_K_M); equal sizes keep the registry's order. A text encoder is
    quantized on the fly (SDNQ) only where ``sdnq`` is installed; an SDNQ variant ships its own.
    """
    on_the_fly: tuple[EncoderPrecision, ...] = (
        ENCODER_PRECISIONS if "sdnq" in environment.variants else ("bf16",)
    )
    ranked: list[tuple[float, Storage]] = []
    for name in variants:
        variant = spec.variant(name)
        if variant.format == "bf16":
            for stored in weights:
                size = transformer_bytes(sizes.transformer, stored, dtype_bytes)
                ranked.append((size, Storage(name, stored, on_the_fly)))
            continue
        sized = variant_sizes.get(name)
        size = float(sized.transformer) if sized is not None and sized.transformer else 0.0
        encoders = (variant.encoder,) if variant.format == "sdnq" else on_the_fly
        ranked.append((size, Storage(name, "bf16", encoders)))
    return [storage for _, storage in sorted(ranked, key=lambda item: -item[0])]


def ranked_candidates(
    accelerator: str,
    device_settings: DeviceSettings,
    environment: Environment,
    *,
    any_profile: bool = False,
    storages: Sequence[Storage] | None = None,
) -> list[Candidate]:
    """Every candidate for this accelerator, fastest first, within the config's choices.

    Order: profile (PCIe traffic), then the transformer's storage in order of quality (``storages``;
    default: the bf16 variant with the weights the config allows), then the text encoder's precision
    (bf16, int8, uint4), then pinning, then tiling. ``any_profile`` lifts only the profile choice (a speed
    decision), for recovering from out-of-memory; an explicit ``weights`` or ``vae_tiling`` changes the
    image, so it is always respected.
    """
    requested_profile = "auto" if any_profile else device_settings.requested_profile
    tiling_setting = device_settings.vae_tiling
    profiles = [p for p in PROFILES if accelerator in PROFILE_DEVICES[p]]
    if requested_profile != "auto" and requested_profile in profiles:
        profiles = [requested_profile]
    if storages is None:
        weights = _allowed_weights(device_settings.weights, accelerator, environment)
        storages = [Storage("bf16", stored) for stored in weights]
    tilings = {"on": [True], "off": [False]}.get(tiling_setting, [False, True])
    out: list[Candidate] = []
    for profile in profiles:
        for storage in storages:
            for encoder in storage.encoders:
                # accelerate's sequential hooks were not checked with quantized parameters: bf16 only.
                if profile == "sequential" and (storage.variant != "bf16" or encoder != "bf16"):
                    continue
                pinnings = (
                    [True, False] if (profile == "group_offload" and accelerator == "cuda") else [False]
                )
                for pinned in pinnings:
                    out.extend(
                        Candidate(profile, storage.weights, pinned, tiled, storage.variant, encoder)
                        for tiled in tilings
                    )
    if not out and not any_profile:
        # A forced sequential profile and quantized weights only (the doctor's rows): plan the others.
        return ranked_candidates(
            accelerator, device_settings, environment, any_profile=True, storages=storages
        )
    return out


def choose(plans: list[MemoryPlan]) -> MemoryPlan:
    """The first plan that fits VRAM and RAM.

    When none fits the RAM: the fastest profile that fits the card, in its variant needing the least RAM
    (the job may still run, with swapping). When nothing fits the card: the smallest plan.
    """
    for plan in plans:
        if plan.fits:
            return plan
    fitting = [p for p in plans if p.fits_vram]
    if fitting:
        same = [p for p in fitting if p.profile == fitting[0].profile]
        return min(same, key=lambda p: p.peak_ram_bytes)
    return min(plans, key=lambda p: (p.peak_vram_bytes, p.peak_ram_bytes))


def prefer_less_traffic(chosen: MemoryPlan, plans: list[MemoryPlan]) -> MemoryPlan:
    """``chosen``, or a smaller weight variant that fits and streams far fewer bytes per image.

    Only a streaming plan (group/sequential offload: the transformer crosses PCIe every step — ~1.6 TB per
    image for Qwen-Image-Edit-2511 Q8_0 on an 8 GB card) is traded, and only for another *variant* (which
    files), in its best plan that fits, moving at most :data:`FAR_LESS_TRAFFIC` of the bytes; the best such
    variant in the ranking wins, and the step repeats from it. Storages chosen on the fly (fp8 casting, an
    encoder's precision) stay quality-first, and a requested variant is the only one offered here.
    """
    first = chosen
    while chosen.fits and chosen.profile in STREAMING_PROFILES:
        best_of: dict[str, MemoryPlan] = {}
        for plan in plans:  # ranked: a variant's first fitting plan is its best here
            if plan.fits and plan.variant != chosen.variant:
                best_of.setdefault(plan.variant, plan)
        lighter = next(
            (
                plan
                for plan in best_of.values()
                if plan.transfer_gb_per_image <= chosen.transfer_gb_per_image * FAR_LESS_TRAFFIC
            ),
            None,
        )
        if lighter is None:
            break
        chosen = lighter
    if chosen is first:
        return chosen
    return replace(
        chosen, preferred_over=first.variant, preferred_over_transfer_gb=first.transfer_gb_per_image
    )


def explain(chosen: MemoryPlan, plans: list[MemoryPlan], hardware: Hardware, forced: str | None) -> str:
    """A few sentences a person can check: what was tried, what it needs, what the machine has."""
    gb = "GB"
    if chosen.accelerator == "cpu":
        text = (
            f"no GPU: the model runs on the CPU in system RAM (needs ~{chosen.predicted_peak_ram_gb:.1f} "
            f"{gb}, {chosen.ram_budget_gb:.1f} {gb} available)"
        )
        if forced:
            text = f"{forced}; {text}"
        return text if chosen.fits_ram else text + "; not enough RAM: close programs or add memory/swap"
    budget = chosen.vram_budget_gb
    card = f"{hardware.vram_free_gb:.1f} {gb} free on the card − reserve = {budget:.1f} {gb} usable"
    lines = []
    if forced:
        lines.append(f"{forced} was requested in the config")
    for plan in plans:
        # A plan traded for traffic lists what was tried before the better-quality plan it replaced.
        if plan is chosen or (chosen.preferred_over and plan.variant == chosen.preferred_over and plan.fits):
            break
        if plan.vae_tiling and not chosen.vae_tiling:
            continue
        lines.append(f"{plan.describe()} needs {plan.predicted_peak_vram_gb:.1f} {gb}")
        if len(lines) >= 4:
            break
    verdict = f"{chosen.describe()} needs {chosen.predicted_peak_vram_gb:.1f} {gb} ({card})" + (
        ""
        if chosen.fits_vram
        else " — does NOT fit: expect out-of-memory; use a smaller size, "
        "fp8/NF4 weights, or close other GPU programs"
    )
    moved = (
        f"; moves ~{chosen.transfer_gb_per_image:.0f} {gb} of weights over PCIe per image"
        if chosen.transfer_gb_per_image
        else ""
    )
    ram = (
        ""
        if chosen.fits_ram
        else f"; RAM: needs ~{chosen.predicted_peak_ram_gb:.0f} {gb}, {chosen.ram_budget_gb:.0f} {gb} "
        "available (loading holds every weight in RAM once): close programs or add swap"
    )
    traded = (
        f"; chose {chosen.variant} over {chosen.preferred_over}, which also fits but streams "
        f"~{chosen.preferred_over_transfer_gb:.0f} {gb} per image ({chosen.profile} moves the weights every "
        "step): far less traffic outweighs the quality step"
        if chosen.preferred_over
        else ""
    )
    tried = "; ".join(lines)
    return (f"{tried}; " if tried else "") + verdict + moved + traded + ram


@dataclass(frozen=True)
class PlanContext:
    """Everything a plan depends on except the candidate itself."""

    spec: ModelSpec
    sizes: ModelSizes
    hardware: Hardware
    workload: Workload
    device_settings: DeviceSettings
    compute_dtype: str
    environment: Environment
    #: The accelerator the plan will run on ("cpu" forbids offload profiles even on simulated cards).
    runs_on: str | None = None
    #: The weight variants the plan may load (present ones, or the one ``models.<id>.weights`` names).
    variants: tuple[str, ...] = ("bf16",)
    #: Their sizes (from their files when present, published otherwise).
    variant_sizes: Mapping[str, VariantBytes] = field(default_factory=dict)

    def storages(self) -> list[Storage]:
        accelerator = self.hardware.accelerator
        weights = _allowed_weights(self.device_settings.weights, accelerator, self.environment)
        return storage_options(
            self.spec, self.variants, weights, self.environment, self.sizes, self.variant_sizes,
            DTYPE_BYTES[self.compute_dtype],
        )  # fmt: skip

    def evaluate_all(self, *, any_profile: bool = False) -> list[MemoryPlan]:
        attention = attention_backend_for(self.device_settings.attention_backend, self.environment)
        accelerator = self.hardware.accelerator
        candidates = ranked_candidates(
            accelerator,
            self.device_settings,
            self.environment,
            any_profile=any_profile,
            storages=self.storages(),
        )
        runs_on = (self.runs_on or accelerator).split(":")[0]
        if runs_on == "cpu" and accelerator != "cpu":
            # Executing on the CPU (tests, or planning for a card we do not have): diffusers can apply model
            # and group offload with a CPU onload device, but not sequential offload or side streams.
            candidates = [c for c in candidates if c.profile != "sequential" and not c.pinned]
        return [
            evaluate(
                c,
                model_id=self.spec.id,
                family=self.spec.family,
                sizes=self.sizes,
                hardware=self.hardware,
                workload=self.workload,
                compute_dtype=self.compute_dtype,
                reserve_gb=self.device_settings.vram_reserve_gb,
                attention_backend=attention,
                variant_sizes=self.variant_sizes,
            )
            for c in candidates
        ]


def plan_memory(context: PlanContext) -> MemoryPlan:
    """The fastest plan that fits, with its explanation."""
    plans = context.evaluate_all()
    chosen = prefer_less_traffic(choose(plans), plans)
    requested = context.device_settings.requested_profile
    forced = None
    if requested != "auto":
        forced = f"device.memory_profile {requested}"
        accelerator = context.hardware.accelerator
        if accelerator not in PROFILE_DEVICES[requested]:  # type: ignore[index]
            reason = "offload needs a GPU" if accelerator == "cpu" else f"not available on {accelerator}"
            forced = f"{forced} (ignored: {reason})"
    return replace(chosen, why=explain(chosen, plans, context.hardware, forced))


def step_down(context: PlanContext, current: MemoryPlan) -> MemoryPlan | None:
    """The next plan with a smaller predicted footprint than ``current`` (after an out-of-memory error).

    A profile forced by the config is left on purpose (recovering beats failing, and the result records
    which plan the job really ran with); forced weights and tiling are kept, since they change the image.
    """
    plans = context.evaluate_all(any_profile=True)
    keys = [(p.profile, p.weights, p.variant, p.text_encoder_weights, p.pinned, p.vae_tiling) for p in plans]
    here = (
        current.profile,
        current.weights,
        current.variant,
        current.text_encoder_weights,
        current.pinned,
        current.vae_tiling,
    )
    start = keys.index(here) + 1 if here in keys else 0
    for plan in plans[start:]:
        if plan.peak_vram_bytes < current.peak_vram_bytes or (
            current.accelerator == "cpu" and plan.peak_ram_bytes < current.peak_ram_bytes
        ):
            why = (
                f"out of memory with {current.describe()}: stepped down to {plan.describe()} "
                f"(predicted {plan.predicted_peak_vram_gb:.1f} GB instead of "
                f"{current.predicted_peak_vram_gb:.1f} GB)"
            )
            return replace(plan, why=why, steps_down_from=(*current.steps_down_from, current.describe()))
    return None
