"""The model registry: the one source of truth for what each model id is and how it is run.

CLI, API and UI read defaults (steps, guidance, sizes) from here and never repeat them. Importing this
module is cheap: no torch, no diffusers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Literal

Task = Literal["text-to-image", "edit"]
Family = Literal["z-image", "qwen-image-edit"]
#: How a weight variant's transformer is stored: the full-precision repository, one GGUF file, or a
#: pre-quantized SDNQ pipeline repository.
WeightFormat = Literal["bf16", "gguf", "sdnq"]
#: Precision of the text encoder a variant runs with: as published, or quantized by SDNQ (int8 / 4-bit).
EncoderPrecision = Literal["bf16", "int8", "uint4"]


@cache
def diffusers_version() -> tuple[int, int]:
    """(major, minor) of the installed diffusers, read from package metadata (no import)."""
    try:
        major, minor, *_ = metadata.version("diffusers").split(".")
        return int(major), int(minor)
    except (metadata.PackageNotFoundError, ValueError):
        return (0, 0)


def z_image_turbo_steps() -> int:
    """Official Turbo step count for the installed diffusers.

    Turbo is distilled for 8 transformer forwards. diffusers before 0.39 spent the last of N scheduler
    steps on a redundant timestep, so the model card said "9 steps = 8 forwards"; from 0.39 on, N steps
    are N forwards and 8 is right (diffusers' own example uses 8).
    """
    return 8 if diffusers_version() >= (0, 39) else 9


@dataclass(frozen=True)
class WeightVariant:
    """One named way to get and run a model's weights (``models.<id>.weights``, ``--weights``).

    ``bf16`` is the model's own repository. A GGUF variant replaces only the transformer with one
    ``.gguf`` file (the rest — configs, tokenizer, scheduler, VAE, text encoder — comes from the base
    repository's folders); an SDNQ variant is a whole pipeline repository whose transformer (and text
    encoder, where ``encoder`` says so) is stored quantized.
    """

    name: str
    format: WeightFormat
    #: Where the variant's own files live (GGUF: the repository holding ``filename``; SDNQ: the pipeline
    #: repository). None: the base repository (``bf16``) or built locally (tiny models).
    repo_id: str | None = None
    #: GGUF: the transformer file in ``repo_id``.
    filename: str | None = None
    #: GGUF quantization type of the bulk of the layers (``Q4_K_M``, ``Q8_0`` …); SDNQ: its weights dtype.
    quant_type: str | None = None
    #: Published bytes of the variant's transformer file(s) — for messages before a download; exact sizes
    #: come from the files' headers once present.
    transformer_bytes: int = 0
    #: The text encoder this variant runs with by default.
    encoder: EncoderPrecision = "bf16"
    #: One word on quality against bf16, and where that judgement comes from.
    quality: str = "reference"
    quality_source: str = ""

    @property
    def quantized(self) -> bool:
        return self.format != "bf16"


BF16_VARIANT = WeightVariant(
    name="bf16", format="bf16", quality="reference", quality_source="the model itself"
)


@dataclass(frozen=True)
class ModelSpec:
    """Everything the app needs to know about one model id."""

    id: str
    title: str
    task: Task
    family: Family
    pipeline_class: str
    repo_id: str | None
    #: Approximate bytes fetched by a download of the files the pipeline needs (for messages only).
    download_bytes: int
    default_steps: int
    min_steps: int
    #: Z-Image-Turbo: ``guidance_scale`` must be exactly this (None: free).
    fixed_guidance: float | None
    default_true_cfg: float | None
    default_negative_prompt: str | None
    default_width: int | None
    default_height: int | None
    size_multiple: int
    min_side: int
    max_side: int
    max_pixels: int
    #: Sizes below this area work but lose quality (warned, not refused).
    quality_min_pixels: int
    max_input_images: int = 0
    #: Pixel area each reference image is encoded at for the VAE / the vision-language encoder.
    reference_vae_area: int | None = None
    reference_condition_area: int | None = None
    #: Edit models: the output's pixel area when no size is given (the pipeline's rule: this area at the
    #: last input image's aspect, sides multiples of 32).
    default_output_area: int | None = None
    #: img2img / inpaint on text-to-image models: how much of the init image is re-noised (0..1].
    default_strength: float | None = None
    default_inpaint_strength: float | None = None
    #: The distilled "Lightning" LoRA of an edit model: hub repo and its weight file per step count.
    lightning_repo: str | None = None
    lightning_files: tuple[tuple[int, str], ...] = ()
    lightning_bytes: int = 0
    #: Scheduler settings the Lightning LoRA was distilled with, applied over the model's own scheduler
    #: config while it is in use (see engine/schedulers.py).
    lightning_scheduler: tuple[tuple[str, object], ...] = ()
    tiny: bool = False
    description: str = ""
    #: Named weight variants, best quality first; the first is always ``bf16``.
    weight_variants: tuple[WeightVariant, ...] = (BF16_VARIANT,)

    @property
    def is_edit(self) -> bool:
        return self.task == "edit"

    def variant(self, name: str) -> WeightVariant:
        """The weight variant called ``name``; a one-line :class:`InvalidRequest` naming the valid ones."""
        for variant in self.weight_variants:
            if variant.name == name:
                return variant
        from imagestudio.errors import InvalidRequest

        valid = ", ".join(v.name for v in self.weight_variants)
        raise InvalidRequest(
            f"model {self.id!r} has no weights {name!r}; valid: auto, {valid}",
            param="weights",
            code="unknown_weights",
            details={"model": self.id, "weights": name, "valid": valid},
        )

    def lightning_file(self, steps: int) -> str | None:
        """The Lightning LoRA's weight file for ``steps`` (4 or 8), if this model has one."""
        return dict(self.lightning_files).get(steps)


_GB = 1000**3

#: Qwen-Image-Edit-2511's distilled LoRA (lightx2v): 4 or 8 steps at true CFG 1.0, per its authors. The
#: file names are those of the repository's bf16 V1.0 files.
QWEN_EDIT_LIGHTNING_REPO = "lightx2v/Qwen-Image-Edit-2511-Lightning"
QWEN_EDIT_LIGHTNING_FILES: tuple[tuple[int, str], ...] = (
    (4, "Qwen-Image-Edit-2511-Lightning-4steps-V1.0-bf16.safetensors"),
    (8, "Qwen-Image-Edit-2511-Lightning-8steps-V1.0-bf16.safetensors"),
)
LIGHTNING_TRUE_CFG = 1.0
#: The Lightning LoRAs were distilled with a fixed time shift of 3 and no terminal stretching (the
#: Qwen-Image-Lightning authors' diffusers script sets base_shift = max_shift = ln 3, shift_terminal None);
#: the base model's own schedule (max_shift 0.9, shift_terminal 0.02) puts its few steps elsewhere.
LIGHTNING_SCHEDULER: tuple[tuple[str, object], ...] = (
    ("base_shift", math.log(3)),
    ("max_shift", math.log(3)),
    ("shift_terminal", None),
    ("use_dynamic_shifting", True),
    ("time_shift_type", "exponential"),
    ("shift", 1.0),
)


#: Published GGUF transformer files. Z-Image-Turbo: jayn7/Z-Image-Turbo-GGUF — names and sizes checked
#: against its file list (Q3_K_M 4.12, Q4_K_M 4.98, Q5_K_M 5.52, Q6_K 5.91, Q8_0 7.22 GB).
#: Qwen-Image-Edit-2511: unsloth/Qwen-Image-Edit-2511-GGUF. File names ``qwen-image-edit-2511-<QUANT>.gguf``
#: (lower-case model, upper-case type) are confirmed by many public download scripts and configs. Sizes:
#: Q4_K_M 13,244,758,624, Q6_K 16,852,417,120 and Q8_0 21,761,817,184 bytes are exact, from a public
#: download script that pins the repository at revision 0d33d969 with each file's byte count and sha256;
#: Q3_K_M 9.74 and Q5_K_M 15.0 GB are the Hub listing's rounded figures as another public project copied
#: them (not exact; unsloth re-uploads its quants, so any figure may drift). A file that is present is
#: always sized from its own header. Quality words: per-weight error on real Z-Image weights reported by
#: moonbox-dev/Z-Image-Turbo-GGUF (Q8_0 0.5 %, Q6_K 1.6 %, Q5_K_M 2.5 %, Q4_K_M 4.7 %), applied to Qwen as
#: an assumption; unsloth advises at least 3-bit and stable-diffusion.cpp calls lower "lower quality".
_GGUF_QUALITY: dict[str, tuple[str, str]] = {
    "Q8_0": ("≈bf16", "0.5 % weight error on Z-Image, moonbox-dev"),
    "Q6_K": ("excellent", "1.6 % weight error on Z-Image, moonbox-dev"),
    "Q5_K_M": ("good", "2.5 % weight error on Z-Image, moonbox-dev"),
    "Q4_K_M": ("good", "4.7 % weight error on Z-Image, moonbox-dev"),
    "Q3_K_M": ("visible-loss", "unsloth advises ≥ 3-bit; stable-diffusion.cpp wiki"),
}
_SDNQ_QUALITY: dict[str, tuple[str, str]] = {
    "int8": ("≈bf16", "SDNQ int8, 8-bit weights"),
    "uint4": ("good", "SDNQ uint4 with SVD rank 32"),
}


def _gguf(repo: str, file_pattern: str, sizes_gb: dict[str, float]) -> tuple[WeightVariant, ...]:
    return tuple(
        WeightVariant(
            name=f"gguf-{quant.lower()}",
            format="gguf",
            repo_id=repo,
            filename=file_pattern.format(quant=quant),
            quant_type=quant,
            transformer_bytes=round(size * _GB),  # round: exact byte counts survive the float
            quality=_GGUF_QUALITY[quant][0],
            quality_source=_GGUF_QUALITY[quant][1],
        )
        for quant, size in sizes_gb.items()
    )


def _sdnq(repos: dict[str, str], sizes_gb: dict[str, float]) -> tuple[WeightVariant, ...]:
    return tuple(
        WeightVariant(
            name=f"sdnq-{dtype}",
            format="sdnq",
            repo_id=repo,
            quant_type=dtype,
            transformer_bytes=int(sizes_gb[dtype] * _GB),
            encoder=dtype,  # type: ignore[arg-type]  # "int8" | "uint4", both EncoderPrecision values
            quality=_SDNQ_QUALITY[dtype][0],
            quality_source=_SDNQ_QUALITY[dtype][1],
        )
        for dtype, repo in repos.items()
    )


Z_IMAGE_VARIANTS: tuple[WeightVariant, ...] = (
    BF16_VARIANT,
    *_gguf(
        "jayn7/Z-Image-Turbo-GGUF",
        "z_image_turbo-{quant}.gguf",
        {"Q8_0": 7.22, "Q6_K": 5.91, "Q5_K_M": 5.52, "Q4_K_M": 4.98, "Q3_K_M": 4.12},
    ),
    # SDNQ transformer sizes: estimates, 6.15 B parameters at 8 / ~4.3 bits (the published folders' sizes
    # were not found; a present folder is sized from its safetensors headers).
    *_sdnq(
        {"int8": "Disty0/Z-Image-Turbo-SDNQ-int8", "uint4": "Disty0/Z-Image-Turbo-SDNQ-uint4-svd-r32"},
        {"int8": 6.3, "uint4": 3.5},
    ),
)
QWEN_EDIT_VARIANTS: tuple[WeightVariant, ...] = (
    BF16_VARIANT,
    *_gguf(
        "unsloth/Qwen-Image-Edit-2511-GGUF",
        "qwen-image-edit-2511-{quant}.gguf",
        {"Q8_0": 21.761817184, "Q6_K": 16.85241712, "Q5_K_M": 15.0, "Q4_K_M": 13.244758624, "Q3_K_M": 9.74},
    ),
    # 20.4 B parameters at 8 / ~4.3 bits (the published folders' sizes are unverified).
    *_sdnq(
        {
            "int8": "OzzyGT/Qwen_Image_Edit_2511_sdnq_dynamic_8bit",
            "uint4": "Disty0/Qwen-Image-Edit-2511-SDNQ-uint4-svd-r32",
        },
        {"int8": 20.9, "uint4": 11.3},
    ),
)
#: The tiny models' variants are written locally from their own random weights, in the real files' layouts
#: (Q8_0 and Q4_0: the types the ``gguf`` package can write; K-quants are download-only).
TINY_VARIANTS: tuple[WeightVariant, ...] = (
    BF16_VARIANT,
    WeightVariant(name="gguf-q8_0", format="gguf", quant_type="Q8_0", quality="≈bf16", quality_source="tiny"),
    WeightVariant(name="gguf-q4_0", format="gguf", quant_type="Q4_0", quality="fair", quality_source="tiny"),
    WeightVariant(
        name="sdnq-int8",
        format="sdnq",
        quant_type="int8",
        encoder="int8",
        quality="≈bf16",
        quality_source="tiny",
    ),
    WeightVariant(
        name="sdnq-uint4",
        format="sdnq",
        quant_type="uint4",
        encoder="uint4",
        quality="good",
        quality_source="tiny",
    ),
)


def _z_image(model_id: str, title: str, repo: str | None, *, tiny: bool) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        title=title,
        task="text-to-image",
        family="z-image",
        pipeline_class="ZImagePipeline",
        repo_id=repo,
        # transformer (fp32 on the hub, ~24.6 GB) + Qwen3-4B text encoder (~8 GB) + VAE
        download_bytes=2_000_000 if tiny else int(32.9 * _GB),
        default_steps=z_image_turbo_steps(),
        min_steps=1,
        fixed_guidance=0.0,
        default_true_cfg=None,
        default_negative_prompt=None,
        default_width=1024,
        default_height=1024,
        size_multiple=16,
        min_side=16 if tiny else 256,
        max_side=2048 if tiny else 3072,
        max_pixels=1024 * 1024 if tiny else 2048 * 2048,
        quality_min_pixels=0 if tiny else 512 * 512,
        # ZImageImg2ImgPipeline's own default; inpainting repaints the masked part completely.
        default_strength=0.6,
        default_inpaint_strength=1.0,
        tiny=tiny,
        weight_variants=TINY_VARIANTS if tiny else Z_IMAGE_VARIANTS,
        description="random weights: output is noise (offline stand-in for Z-Image-Turbo)" if tiny else "",
    )


def _qwen_edit(model_id: str, title: str, repo: str | None, *, tiny: bool) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        title=title,
        task="edit",
        family="qwen-image-edit",
        pipeline_class="QwenImageEditPlusPipeline",
        repo_id=repo,
        # transformer bf16 (~40.9 GB) + Qwen2.5-VL-7B (~16.6 GB) + VAE
        download_bytes=3_500_000 if tiny else int(57.7 * _GB),
        default_steps=40,
        # one step yields NaN with this model's scheduler config
        min_steps=2,
        fixed_guidance=None,
        default_true_cfg=4.0,
        default_negative_prompt=" ",
        # None: the pipeline's rule, ~1024² area at the last input image's aspect
        default_width=None,
        default_height=None,
        size_multiple=16,
        min_side=16 if tiny else 256,
        max_side=2048 if tiny else 3072,
        max_pixels=1024 * 1024 if tiny else 2048 * 2048,
        quality_min_pixels=0 if tiny else 512 * 512,
        max_input_images=3,
        reference_vae_area=64 * 64 if tiny else 1024 * 1024,
        reference_condition_area=64 * 64 if tiny else 384 * 384,
        # the tiny model keeps tests fast: 64² instead of the pipeline's 1024²
        default_output_area=64 * 64 if tiny else 1024 * 1024,
        lightning_repo=None if tiny else QWEN_EDIT_LIGHTNING_REPO,
        lightning_files=() if tiny else QWEN_EDIT_LIGHTNING_FILES,
        lightning_bytes=0 if tiny else int(0.85 * _GB),
        lightning_scheduler=() if tiny else LIGHTNING_SCHEDULER,
        tiny=tiny,
        weight_variants=TINY_VARIANTS if tiny else QWEN_EDIT_VARIANTS,
        description="random weights: output is noise (offline stand-in for Qwen-Image-Edit-2511)"
        if tiny
        else "",
    )


MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        _z_image("z-image-turbo", "Z-Image-Turbo", "Tongyi-MAI/Z-Image-Turbo", tiny=False),
        _qwen_edit("qwen-image-edit-2511", "Qwen-Image-Edit-2511", "Qwen/Qwen-Image-Edit-2511", tiny=False),
        _z_image("tiny-z-image", "Tiny Z-Image (offline, random weights)", None, tiny=True),
        _qwen_edit("tiny-qwen-image-edit", "Tiny Qwen edit (offline, random weights)", None, tiny=True),
    )
}

DEFAULT_GENERATE_MODEL = "z-image-turbo"
DEFAULT_EDIT_MODEL = "qwen-image-edit-2511"


def get_model(model_id: str, *, task: Task | None = None) -> ModelSpec:
    """Look a model up by id, optionally requiring a task; raises a one-line :class:`InvalidRequest`."""
    from imagestudio.errors import InvalidRequest

    spec = MODELS.get(model_id)
    if spec is None:
        raise InvalidRequest(
            f"unknown model {model_id!r}; valid: {', '.join(MODELS)}",
            param="model",
            code="unknown_model",
            details={"model": model_id},
        )
    if task is not None and spec.task != task:
        valid = ", ".join(m.id for m in MODELS.values() if m.task == task)
        raise InvalidRequest(
            f"model {model_id!r} does not do {task}; use one of: {valid}",
            param="model",
            code="wrong_task",
            details={"model": model_id, "valid": valid},
        )
    return spec


# ---------------------------------------------------------------------------------------- upscalers


@dataclass(frozen=True)
class UpscalerSpec:
    """An image upscaler: one ``.safetensors`` file of an architecture spandrel knows (ESRGAN family)."""

    id: str
    title: str
    #: The factor the network enlarges by in one pass (spandrel reads it from the weights too).
    scale: int
    repo_id: str | None
    filename: str
    download_bytes: int
    #: The file's SHA-256 as published; a download that does not match it is refused.
    sha256: str | None
    license: str
    tiny: bool = False
    description: str = ""


UPSCALERS: dict[str, UpscalerSpec] = {
    spec.id: spec
    for spec in (
        # xinntao's Real-ESRGAN x4plus (BSD-3-Clause), repackaged as .safetensors by Comfy-Org.
        UpscalerSpec(
            id="realesrgan-x4plus",
            title="Real-ESRGAN x4plus",
            scale=4,
            repo_id="Comfy-Org/Real-ESRGAN_repackaged",
            filename="RealESRGAN_x4plus.safetensors",
            download_bytes=66_857_836,
            sha256="37f9a931c215f040aa6d50f711f2cb115f713c46df1d0d6469a8bd7bfe9a60bb",
            license="BSD-3-Clause",
        ),
        UpscalerSpec(
            id="tiny-upscaler",
            title="Tiny upscaler (offline, random weights)",
            scale=2,
            repo_id=None,
            filename="tiny-upscaler.safetensors",
            download_bytes=20_000,
            sha256=None,
            license="random weights",
            tiny=True,
            description="random weights: output is noise (offline stand-in for a real upscaler)",
        ),
    )
}

DEFAULT_UPSCALER = "realesrgan-x4plus"


def get_upscaler(upscaler_id: str) -> UpscalerSpec:
    """Look an upscaler up by id; raises a one-line :class:`InvalidRequest` naming the valid ones."""
    from imagestudio.errors import InvalidRequest

    spec = UPSCALERS.get(upscaler_id)
    if spec is None:
        raise InvalidRequest(
            f"unknown upscaler {upscaler_id!r}; valid: {', '.join(UPSCALERS)}",
            param="upscaler",
            code="unknown_upscaler",
            details={"upscaler": upscaler_id},
        )
    return spec


# ---------------------------------------------------------------------------------------- control


@dataclass(frozen=True)
class ControlNetSpec:
    """A Z-Image ControlNet (diffusers' ``ZImageControlNetModel``) and the text-to-image model it steers."""

    id: str
    title: str
    #: The text-to-image model whose transformer it attaches to.
    base_model: str
    repo_id: str | None
    #: The single ``.safetensors`` file of the release (loaded with ``from_single_file``).
    filename: str | None
    download_bytes: int
    #: Control types it was trained on (plus "map": a control image used as it is).
    types: tuple[str, ...]
    #: The card's recommended strength (``control_context_scale``) and its range.
    default_weight: float
    min_weight: float
    max_weight: float
    tiny: bool = False


#: Types the Union model was trained on (its card) and "map": the user's own, already made control image.
CONTROL_TYPES = ("canny", "hed", "depth", "pose", "mlsd", "map")
#: Types this version can make a map for from a photo: canny and mlsd with OpenCV (no weights), HED, depth
#: and pose with detector models (:data:`DETECTORS`).
DETECTED_CONTROL_TYPES = ("canny", "hed", "depth", "pose", "mlsd")

CONTROLNETS: dict[str, ControlNetSpec] = {
    spec.id: spec
    for spec in (
        # alibaba-pai's Union 2.1 (Apache-2.0): control blocks on 15 layers plus the noise refiner, and an
        # inpaint mode; diffusers 0.42 loads it from the single file (1.0 and 2.0 load too).
        ControlNetSpec(
            id="z-image-turbo-controlnet-union-2.1",
            title="Z-Image-Turbo Fun ControlNet Union 2.1",
            base_model="z-image-turbo",
            repo_id="alibaba-pai/Z-Image-Turbo-Fun-Controlnet-Union-2.1",
            filename="Z-Image-Turbo-Fun-Controlnet-Union-2.1.safetensors",
            download_bytes=int(6.7 * _GB),
            types=CONTROL_TYPES,
            default_weight=0.75,
            min_weight=0.65,
            max_weight=0.80,
        ),
        ControlNetSpec(
            id="tiny-z-image-controlnet",
            title="Tiny Z-Image ControlNet (offline, random weights)",
            base_model="tiny-z-image",
            repo_id=None,
            filename=None,
            download_bytes=100_000,
            types=CONTROL_TYPES,
            default_weight=0.75,
            min_weight=0.65,
            max_weight=0.80,
            tiny=True,
        ),
    )
}


def controlnet_for(model_id: str) -> ControlNetSpec | None:
    """The ControlNet that steers ``model_id`` (None: the model takes no control image)."""
    return next((spec for spec in CONTROLNETS.values() if spec.base_model == model_id), None)


@dataclass(frozen=True)
class DetectorSpec:
    """A transformers model that makes a control map from a photo (depth estimation, pose estimation) or
    finds what another detector needs (the people the pose detector is run on).

    Its files are a ``save_pretrained`` folder (``config.json``, ``preprocessor_config.json`` and the
    ``.safetensors`` weights), fetched into the hub cache by ``imagestudio models download ID``.
    """

    id: str
    title: str
    #: The control type whose map it makes ("person": boxes of people for the pose detector, no map).
    control_type: str
    repo_id: str | None
    files: tuple[str, ...]
    download_bytes: int
    license: str
    tiny: bool = False
    #: Detectors run before this one and fetched with it (pose: the person detector).
    companions: tuple[str, ...] = ()
    #: The published file when it is a pickle (HED's ``.pth``): fetched, converted once to ``files`` under
    #: torch's restricted unpickler, then deleted (models/hed.py); None: ``files`` are fetched as they are.
    pickle_source: str | None = None
    #: Bytes it needs while it runs, where its weights times the usual allowance fall short (HED keeps
    #: 64-channel maps of the whole picture at its working size); None: that allowance.
    run_bytes: int | None = None


#: What transformers' ``save_pretrained`` writes for a vision model and its preprocessor.
_TRANSFORMERS_FOLDER = ("config.json", "preprocessor_config.json", "model.safetensors")

DETECTORS: dict[str, DetectorSpec] = {
    spec.id: spec
    for spec in (
        # Depth Anything V2 Small (Apache-2.0; the larger sizes are CC-BY-NC-4.0), transformers' format: a
        # ~25M-parameter relative-depth model, the usual preprocessor for depth ControlNets.
        DetectorSpec(
            id="depth-anything-v2-small",
            title="Depth Anything V2 Small",
            control_type="depth",
            repo_id="depth-anything/Depth-Anything-V2-Small-hf",
            files=("config.json", "preprocessor_config.json", "model.safetensors"),
            download_bytes=99_200_000,
            license="Apache-2.0",
        ),
        DetectorSpec(
            id="tiny-depth",
            title="Tiny Depth Anything (offline, random weights)",
            control_type="depth",
            repo_id=None,
            files=("config.json", "preprocessor_config.json", "model.safetensors"),
            download_bytes=150_000,
            license="Apache-2.0",
            tiny=True,
        ),
        # HED 1.1 soft edges (Apache-2.0), lllyasviel's ControlNet annotator: published only as a pickle
        # (fp16, 14.7M parameters), converted to safetensors at download. Its maps of the whole picture
        # outweigh its weights: at the 512×1024 working size of a 1:2 picture, measured on the CPU here,
        # 425 MB of activations at the peak above 59 MB of fp32 weights.
        DetectorSpec(
            id="controlnet-hed",
            title="HED 1.1 soft edges (the ControlNet annotator)",
            control_type="hed",
            repo_id="lllyasviel/Annotators",
            files=("ControlNetHED.safetensors",),
            download_bytes=29_444_406,
            license="Apache-2.0",
            pickle_source="ControlNetHED.pth",
            run_bytes=490_000_000,
        ),
        DetectorSpec(
            id="tiny-hed",
            title="Tiny HED (offline, random weights)",
            control_type="hed",
            repo_id=None,
            files=("ControlNetHED.safetensors",),
            download_bytes=12_000,
            license="Apache-2.0",
            tiny=True,
        ),
        # Pose, top-down as transformers' VitPose docs run it: RT-DETR finds the people, ViTPose-B (simple
        # decoder, COCO's 17 keypoints) places each one's joints. Both Apache-2.0, safetensors; sizes are
        # their fp32 parameters (the download shows the hub's own).
        DetectorSpec(
            id="vitpose-base-simple",
            title="ViTPose-B (with the RT-DETR person detector)",
            control_type="pose",
            repo_id="usyd-community/vitpose-base-simple",
            files=_TRANSFORMERS_FOLDER,
            download_bytes=343_300_000,
            license="Apache-2.0",
            companions=("rtdetr-r50vd-coco-o365",),
        ),
        DetectorSpec(
            id="rtdetr-r50vd-coco-o365",
            title="RT-DETR R50 (finds the people for pose)",
            control_type="person",
            repo_id="PekingU/rtdetr_r50vd_coco_o365",
            files=_TRANSFORMERS_FOLDER,
            download_bytes=172_000_000,
            license="Apache-2.0",
        ),
        DetectorSpec(
            id="tiny-pose",
            title="Tiny ViTPose (offline, random weights)",
            control_type="pose",
            repo_id=None,
            files=_TRANSFORMERS_FOLDER,
            download_bytes=90_000,
            license="Apache-2.0",
            tiny=True,
            companions=("tiny-person",),
        ),
        DetectorSpec(
            id="tiny-person",
            title="Tiny RT-DETR (offline, random weights)",
            control_type="person",
            repo_id=None,
            files=_TRANSFORMERS_FOLDER,
            download_bytes=170_000,
            license="Apache-2.0",
            tiny=True,
        ),
    )
}


def detector_parts(spec: DetectorSpec) -> tuple[DetectorSpec, ...]:
    """``spec`` and the detectors it needs, in the order they run (its companions first)."""
    return (*(DETECTORS[name] for name in spec.companions), spec)


def detector_for(control_type: str, model_id: str) -> DetectorSpec | None:
    """The detector that makes ``control_type``'s map for ``model_id`` (the tiny one for a tiny model)."""
    tiny = get_model(model_id).tiny
    return next((d for d in DETECTORS.values() if d.control_type == control_type and d.tiny == tiny), None)
