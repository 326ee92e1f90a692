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

    @property
    def is_edit(self) -> bool:
        return self.task == "edit"

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
#: Types this version can make a map for from a photo (the others need their detector, not built in yet).
DETECTED_CONTROL_TYPES = ("canny",)

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
