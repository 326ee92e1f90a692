"""The planning service: settings + this machine (or a simulated one) → a memory plan per request.

The studio owns one :class:`MemoryPlanner`. It probes the hardware when asked (free accelerator memory
changes as other programs come and go), sizes models once per process, turns requests into workloads
and decides whether a resident pipeline can serve the next request as it is.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.memory.activations import Workload
from imagestudio.memory.plan import Candidate as _Candidate
from imagestudio.memory.plan import (
    Environment,
    MemoryPlan,
    PlanContext,
    check_variant,
    detect_environment,
    evaluate,
    plan_memory,
    step_down,
)
from imagestudio.memory.variant_sizes import VariantBytes, all_variant_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

    from imagestudio.config import Settings
    from imagestudio.hardware import Hardware
    from imagestudio.memory.sizes import ModelSizes
    from imagestudio.registry import ModelSpec

log = logging.getLogger(__name__)


def present_variant_files(spec: ModelSpec, settings: Settings) -> dict[str, Path]:
    """Each weight variant of ``spec`` on this machine → its GGUF file or pipeline folder (disk only).

    Asks :mod:`imagestudio.models.variants` (the one search order loading follows). A tiny model's
    variants count as present (they are built on first use): their path is where they will be built.
    """
    from imagestudio.models.variants import gguf_filename, variant_dir, variant_files

    found: dict[str, Path] = {}
    if settings.storage.models_dir is None:  # settings built in code, not loaded: no folder to look in
        return found
    for variant in spec.weight_variants:
        files = variant_files(spec, variant, settings, build_tiny=False)
        # A GGUF download's base folder has no transformer weights: it is not the bf16 variant.
        if files is not None and (variant.quantized or files.transformer_files()):
            found[variant.name] = files.gguf_file or files.pipeline_dir
        elif spec.tiny:
            folder = (
                variant_dir(spec, variant, settings) if variant.quantized else settings.models_dir / spec.id
            )
            found[variant.name] = (
                folder / gguf_filename(spec, variant) if variant.format == "gguf" else folder
            )
    return found


def workload_for(spec: ModelSpec, request: Any = None, settings: Settings | None = None) -> Workload:
    """The memory-relevant part of a request (any of the request types), or the model's default job.

    Works by duck typing so every request type (text-to-image, edit, img2img, inpaint) maps the same
    way: ``width``/``height``; input images from ``images`` (edit) or ``image`` (img2img/inpaint);
    classifier-free guidance from ``guidance_scale`` > 0 (Z-Image) or ``true_cfg_scale`` > 1 (Qwen edit).
    """
    gen = settings.generation if settings is not None else None
    width = getattr(request, "width", None) or spec.default_width or (gen.default_width if gen else 1024)
    height = getattr(request, "height", None) or spec.default_height or (gen.default_height if gen else 1024)
    steps = getattr(request, "steps", None) or spec.default_steps
    images = getattr(request, "images", None)
    if images is None:
        single = getattr(request, "image", None) or getattr(request, "init_image", None)
        images = [single] if single is not None else []
    count = len(images) if request is not None else (1 if spec.is_edit else 0)
    if spec.is_edit:
        count = max(count, 1)
        input_area = getattr(request, "reference_vae_area", None) or spec.reference_vae_area or width * height
        condition_area = (
            getattr(request, "reference_condition_area", None) or spec.reference_condition_area or 0
        )
        true_cfg = getattr(request, "true_cfg_scale", None)
        cfg = (spec.default_true_cfg or 0) > 1 if true_cfg is None else true_cfg > 1
    else:
        input_area = width * height if count else 0
        condition_area = 0
        guidance = getattr(request, "guidance_scale", None) or 0.0
        cfg = guidance > 0
    workload = Workload(
        width=int(width),
        height=int(height),
        input_images=count,
        input_area=int(input_area),
        condition_area=int(condition_area),
        cfg=bool(cfg),
        steps=int(steps),
    )
    return with_extras(spec, workload, request, settings)


def with_extras(spec: ModelSpec, workload: Workload, request: Any, settings: Settings | None) -> Workload:
    """``workload`` with what a request's control image and hires pass add (see :mod:`.extras`).

    The hires pass's img2img runs at the enlarged size, or on tiles of the model's own size past its
    limit, after the first pass: the larger of the two runs is the one planned.
    """
    from imagestudio.memory.extras import (
        controlnet_bytes,
        detector_bytes,
        needs_tiles,
        tile_side,
        upscaler_bytes,
    )
    from imagestudio.memory.sizes import DTYPE_BYTES
    from imagestudio.registry import controlnet_for, detector_for, get_upscaler

    if request is None:
        return workload
    dtype = settings.model(spec.id).torch_dtype if settings is not None else "bfloat16"
    dtype_bytes = DTYPE_BYTES[dtype]
    changes: dict[str, Any] = {}
    control = getattr(request, "control", None)
    net = controlnet_for(spec.id) if control is not None else None
    if control is not None and net is not None:
        changes["controlnet_bytes"] = controlnet_bytes(net, dtype_bytes)
        detector = detector_for(control.type, spec.id)
        if detector is not None:
            changes["detector_bytes"] = detector_bytes(detector)
    if getattr(request, "hires_scale", None) is not None:
        default = settings.upscale.default_upscaler if settings is not None else "realesrgan-x4plus"
        upscaler = get_upscaler(getattr(request, "hires_upscaler", None) or default)
        changes["upscaler_bytes"] = upscaler_bytes(upscaler, dtype_bytes)
        width, height = request.hires_size()
        if needs_tiles(spec, width, height):
            width = height = tile_side(spec)
        if width * height > workload.width * workload.height:
            changes.update(width=width, height=height, input_images=1, input_area=width * height)
    return replace(workload, **changes) if changes else workload


class MemoryPlanner:
    """Plans for ``settings`` on ``hardware`` (probed on each plan when not given) running on ``device``.

    ``device`` is where pipelines really execute; it may differ from the planned-for hardware, e.g. to
    exercise offload plans of a simulated card on the CPU (diffusers applies model and group offload
    with a CPU onload device).
    """

    def __init__(
        self,
        settings: Settings,
        hardware: Hardware | None = None,
        device: str | None = None,
        environment: Environment | None = None,
        locate_variants: Callable[[ModelSpec, Settings], dict[str, Path]] | None = None,
    ) -> None:
        self.settings = settings
        self._locate_variants = locate_variants or present_variant_files
        self._hardware = hardware
        self._device = device
        self._environment = environment
        # Sizes read from a model folder (models without packaged configs), once per model: later plans
        # must not need the files (a model parked in RAM may have lost its folder) nor re-verify them.
        self._folder_sizes: dict[str, ModelSizes] = {}

    def present_variants(self, spec: ModelSpec) -> dict[str, Path]:
        """The variants of ``spec`` on this machine (name → file or folder), asked of the disk each time."""
        return self._locate_variants(spec, self.settings)

    def configured_variant(self, spec: ModelSpec) -> str:
        """``models.<id>.weights``: ``auto`` or a variant name."""
        return self.settings.model(spec.id).weights

    def variant_choices(
        self, spec: ModelSpec, present: dict[str, Path] | None = None, requested: str | None = None
    ) -> tuple[str, ...]:
        """The variants a plan may load: the requested (``--weights``) or configured one (checked against the
        rest of the config), else
        those present that this Python can read, best first (the bf16 variant alone when none is here).

        A ``device.weights`` other than auto asks for the bf16 files stored that way, so it keeps to them.
        """
        configured = requested or self.configured_variant(spec)
        if configured != "auto":
            check_variant(
                spec, configured, self.settings.device, self.environment, requested=requested is not None
            )
            return (configured,)
        if self.settings.device.weights != "auto":
            return ("bf16",)
        present = self.present_variants(spec) if present is None else present
        readable = tuple(
            v.name
            for v in spec.weight_variants
            if v.name in present and (not v.quantized or v.format in self.environment.variants)
        )
        return readable or ("bf16",)

    def variant_sizes(
        self, spec: ModelSpec, present: dict[str, Path] | None = None
    ) -> dict[str, VariantBytes]:
        """Every variant's sizes: exact from the files of those present, published for the others."""
        return all_variant_bytes(spec, self.present_variants(spec) if present is None else present)

    @property
    def environment(self) -> Environment:
        if self._environment is None:
            self._environment = detect_environment()
        return self._environment

    def hardware(self) -> Hardware:
        if self._hardware is not None:
            return self._hardware
        from imagestudio.hardware import probe_hardware

        return probe_hardware(self.device, self.settings.models_dir)

    @property
    def device(self) -> str:
        if self._device is None:
            from imagestudio.hardware import resolve_device

            self._device = resolve_device(self.settings.device.type)
        return self._device

    def sizes(self, spec: ModelSpec) -> ModelSizes:
        from imagestudio.memory.sizes import model_sizes
        from imagestudio.models.configs import packaged_config_dir

        if packaged_config_dir(spec.id) is not None:
            return model_sizes(spec, None)
        if spec.id not in self._folder_sizes:
            from imagestudio.models.state import require_model_dir

            self._folder_sizes[spec.id] = model_sizes(spec, require_model_dir(spec, self.settings))
        return self._folder_sizes[spec.id]

    def context(
        self,
        spec: ModelSpec,
        workload: Workload,
        hardware: Hardware | None = None,
        variants: tuple[str, ...] | None = None,
        requested: str | None = None,
    ) -> PlanContext:
        """Everything a plan of ``spec`` depends on; ``variants`` overrides :meth:`variant_choices` (the
        doctor plans variants that are not downloaded); ``requested`` is a request's ``weights``."""
        present = self.present_variants(spec)
        return PlanContext(
            spec=spec,
            sizes=self.sizes(spec),
            hardware=hardware or self.hardware(),
            workload=workload,
            device_settings=self.settings.device,
            compute_dtype=self.settings.model(spec.id).torch_dtype,
            environment=self.environment,
            runs_on=self.device,
            variants=variants or self.variant_choices(spec, present, requested),
            variant_sizes=self.variant_sizes(spec, present),
        )

    def plan(
        self, spec: ModelSpec, workload: Workload | None = None, variants: tuple[str, ...] | None = None
    ) -> MemoryPlan:
        workload = workload or workload_for(spec, None, self.settings)
        return plan_memory(self.context(spec, workload, variants=variants))

    def auto_variant(self, spec: ModelSpec, workload: Workload | None = None) -> str:
        """The variant ``models.<id>.weights: auto`` loads: the one the plan for the default job picks."""
        return self.plan(spec, workload).variant

    def plan_for_request(
        self, spec: ModelSpec, request: Any, resident: MemoryPlan | None = None
    ) -> MemoryPlan:
        """The plan for ``request``; keeps the resident pipeline's placement when it still fits.

        Loading a model again costs far more than running it a little slower, so a resident placement that
        fits the new request (with or without VAE tiling, which is free to toggle) is kept, even after an
        out-of-memory step-down.
        """
        workload = workload_for(spec, request, self.settings)
        context = self.context(spec, workload, requested=getattr(request, "weights", None))
        if resident is not None and resident.model_id == spec.id and resident.variant in context.variants:
            tiling = self.settings.device.vae_tiling
            for tiled in (False, True):
                if tiling != "auto" and tiled != (tiling == "on"):
                    continue
                again = evaluate(
                    _Candidate(
                        resident.profile,
                        resident.weights,
                        resident.pinned,
                        tiled,
                        resident.variant,
                        resident.text_encoder_weights,
                    ),
                    model_id=spec.id,
                    family=spec.family,
                    sizes=context.sizes,
                    hardware=context.hardware,
                    workload=workload,
                    compute_dtype=context.compute_dtype,
                    reserve_gb=self.settings.device.vram_reserve_gb,
                    attention_backend=resident.attention_backend,
                    variant_sizes=context.variant_sizes,
                )
                if again.fits_vram:
                    return replace(again, why=f"kept the loaded {resident.describe()}: it fits this request")
        return plan_memory(context)

    def step_down(
        self, spec: ModelSpec, current: MemoryPlan, requested: str | None = None
    ) -> MemoryPlan | None:
        """The next smaller plan after out-of-memory: with ``weights: auto`` it may be a smaller present
        variant; a requested or configured variant is kept (it changes the image)."""
        return step_down(self.context(spec, current.workload, requested=requested), current)
