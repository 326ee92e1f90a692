"""The configuration check: will each model run on this machine, and how?

The original documents' "configuration check", as a service the CLI (``imagestudio doctor``) and other
edges can call: a list of checks (✅ ok / ⚠️ warn / ❌ fail) about the device, memory, disk and the config
against the models' official recommendations, then each model's memory plan with its predicted peaks.
Nothing is downloaded or loaded; models are sized from their stored configs on the meta device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.errors import ConfigError
from imagestudio.registry import ModelSpec, WeightVariant, diffusers_version, get_model, z_image_turbo_steps

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.hardware import Hardware
    from imagestudio.memory.plan import MemoryPlan
    from imagestudio.memory.variant_sizes import VariantBytes

Status = Literal["ok", "warn", "fail"]
ICONS: dict[str, str] = {"ok": "✅", "warn": "⚠️", "fail": "❌"}

#: The models doctor reports on when none is named: the real ones.
DEFAULT_MODELS = ("z-image-turbo", "qwen-image-edit-2511")

ALLOC_ENV = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")
EXPANDABLE = "expandable_segments:True"

GIB = 1024**3


#: Every check's English text by code. The code and its details are the check's real content: the CLI
#: prints these lines, the web UI renders ``doctor.<code>`` from its translation tables (ui/i18n) with the
#: same details, so a check reads the same in English and Russian.
MESSAGES: dict[str, str] = {
    "allocator.set": "{setting} is set (less fragmentation on long runs)",
    "allocator.other": "{shown} without {setting}: fragmentation can cause OOM",
    "allocator.unset": "PYTORCH_CUDA_ALLOC_CONF is not set; the imagestudio command and start_app scripts "
    "set {setting}",
    "device.cuda": "CUDA {name} (compute {cc})",
    "device.cuda_simulated": "simulated: CUDA {name} (compute {cc})",
    "device.mps": "Apple GPU (MPS), {total} GB working set",
    "device.mps_simulated": "simulated: Apple GPU (MPS), {total} GB working set",
    "device.cpu": "no GPU (CPU build of torch or no driver): the real models would take many minutes per "
    "image; the tiny offline models run fine",
    "vram.free": "{total} GB total, {free} GB free",
    "vram.busy": "{total} GB total, {free} GB free ({used} GB used by other programs)",
    "bf16.missing": "this GPU has no bfloat16 (pre-Ampere): set models.<id>.torch_dtype: float32 "
    "(float16 gives NaN/black images with these models)",
    "ram.size": "{total} GB total, {available} GB available",
    "dtype.float16": "float16 gives NaN/black images: use bfloat16",
    "dtype.float32": "float32 doubles memory; bfloat16 is official",
    "dtype.bfloat16": "bfloat16 (official)",
    "guidance.wrong": "{value}: Z-Image-Turbo needs exactly 0 (anything else runs CFG, doubling the time and "
    "degrading the image)",
    "guidance.official": "0 (official for Z-Image-Turbo)",
    "steps.default": "official ({official} with diffusers {version})",
    "steps.other": "{steps}: official is {official} with diffusers {version}",
    "steps.nine": "{steps}: official is {official} with diffusers {version} (the documents' 9 = 8 forwards "
    "was for diffusers < 0.39; here 9 steps are 9 forwards)",
    "steps.official": "{steps} (official)",
    "offload.legacy": "enable_cpu_offload/sequential_offload force {profile} on every card; remove them to "
    "let the plan pick the fastest profile that fits",
    "files.present": "on disk at {folder}",
    "files.tiny": "built on first use (a few MB)",
    "files.missing": "not downloaded ({need} GB)",
    "files.no_space": "not downloaded: needs {need} GB, only {free} GB free in the models folder",
    "files.space": "not downloaded yet: needs {need} GB, {free} GB free in the models folder",
    "plan.cpu": "{plan}: no GPU, runs in system RAM (needs ~{ram} GB, {ram_budget} GB available)",
    "plan.cpu_no_ram": "{plan}: no GPU, runs in system RAM (needs ~{ram} GB, {ram_budget} GB available): not "
    "enough RAM, close programs or add memory/swap",
    "plan.fits": "{plan}: needs {vram} GB of {vram_budget} GB usable on the card and ~{ram} GB of RAM",
    "plan.no_vram": "{plan}: needs {vram} GB, only {vram_budget} GB usable on the card: expect "
    "out-of-memory; use a smaller size, fp8/NF4 weights, or close other GPU programs",
    "plan.no_ram": "{plan}: needs ~{ram} GB of RAM, {ram_budget} GB available (loading holds every weight in "
    "RAM once): close programs or add swap",
    "plan.controlnet": "with a control image, {controlnet} adds {extra} GB while denoising: {plan}, peak "
    "~{peak} GB of {budget} GB usable",
    "plan.hires": "with a hires pass x{scale} (img2img at {width}x{height}), {upscaler} adds {extra} GB "
    "after the first pass: {plan}, peak ~{peak} GB of {budget} GB usable",
}

#: The hires scale the doctor plans for (A1111's and SillyTavern's usual ``hr_scale``).
DOCTOR_HIRES_SCALE = 2.0


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and ``MESSAGES[code]`` with ``details``."""

    name: str
    status: Status
    code: str
    details: dict[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return MESSAGES[self.code].format(**self.details)

    def line(self) -> str:
        return f"{ICONS[self.status]} {self.name}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "status": self.status,
            "message": self.message,
            "code": self.code,
            "details": dict(self.details),
        }


def gb(value: float) -> str:
    """A size in GB as the messages show it (one decimal)."""
    return f"{value:.1f}"


def need_and_have(need: float, have: float) -> tuple[str, str]:
    """Two sizes as a message compares them: more decimals when one decimal would show them equal.

    "needs ~21.7 GB, 21.7 GB available: not enough" reads as a contradiction; "21.74 … 21.66" does not.
    """
    for decimals in (1, 2, 3):
        shown = f"{need:.{decimals}f}", f"{have:.{decimals}f}"
        if shown[0] != shown[1] or need == have:
            return shown
    return shown


@dataclass(frozen=True)
class VariantRow:
    """One weight variant of a model on this machine: its download, its best plan here, its quality."""

    variant: WeightVariant
    plan: MemoryPlan
    download_bytes: int
    sized: VariantBytes

    @property
    def present(self) -> bool:
        return self.sized.present

    def as_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "variant": self.variant.name,
            "format": self.variant.format,
            "download_gb": round(self.download_bytes / 1000**3, 2),
            "present": self.present,
            "size_source": self.sized.transformer_source,
            "fits": plan.fits,
            "plan": plan.describe(),
            "profile": plan.profile,
            "text_encoder_weights": plan.text_encoder_weights,
            "predicted_peak_vram_gb": plan.predicted_peak_vram_gb,
            "predicted_peak_ram_gb": plan.predicted_peak_ram_gb,
            "transfer_gb_per_image": plan.transfer_gb_per_image,
            "transformer_gb": round(plan.transformer_bytes / GIB, 2),
            "quality": self.variant.quality,
            "quality_source": self.variant.quality_source,
        }


@dataclass(frozen=True)
class ModelReport:
    spec: ModelSpec
    plan: MemoryPlan
    params: dict[str, int]
    downloaded: bool
    checks: list[Check] = field(default_factory=list)
    #: The default job's plan again with a control image, and with a hires pass: what they add.
    extras: list[Check] = field(default_factory=list)
    #: Every weight variant, planned for this machine as if it were downloaded.
    variants: list[VariantRow] = field(default_factory=list)
    #: The plan ``auto`` would pick with every variant downloaded: its variant is the one to get.
    best: MemoryPlan | None = None

    @property
    def recommended(self) -> str | None:
        """The variant to download for this machine (None: none fits)."""
        return self.best.variant if self.best is not None and self.best.fits else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.plan.as_dict(),
            "transformer_params": self.params["transformer"],
            "text_encoder_params": self.params["text_encoder"],
            "vae_params": self.params["vae"],
            "downloaded": self.downloaded,
            "checks": [c.as_dict() for c in self.checks],
            "extras": [c.as_dict() for c in self.extras],
            "variants": [row.as_dict() for row in self.variants],
            "recommended_variant": self.recommended,
            "recommended_plan": self.best.as_dict() if self.best is not None else None,
        }


@dataclass(frozen=True)
class DoctorReport:
    hardware: Hardware
    checks: list[Check]
    models: list[ModelReport]

    def as_dict(self) -> dict[str, Any]:
        return {
            "hardware": self.hardware.as_dict(),
            "checks": [c.as_dict() for c in self.checks],
            "models": [m.as_dict() for m in self.models],
        }


def allocator_check(environ: dict[str, str] | os._Environ[str] | None = None) -> Check:
    env = os.environ if environ is None else environ
    values = {name: env.get(name, "") for name in ALLOC_ENV if env.get(name)}
    if any(EXPANDABLE in value.replace(" ", "") for value in values.values()):
        return Check("allocator", "ok", "allocator.set", {"setting": EXPANDABLE})
    if values:
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        return Check("allocator", "warn", "allocator.other", {"shown": shown, "setting": EXPANDABLE})
    return Check("allocator", "warn", "allocator.unset", {"setting": EXPANDABLE})


def hardware_checks(hardware: Hardware) -> list[Check]:
    suffix = "_simulated" if hardware.simulated else ""
    checks = []
    if hardware.accelerator == "cuda":
        cc = ".".join(map(str, hardware.compute_capability or ()))
        checks.append(Check("device", "ok", f"device.cuda{suffix}", {"name": str(hardware.name), "cc": cc}))
        used = hardware.vram_total_gb - hardware.vram_free_gb
        sizes = {"total": gb(hardware.vram_total_gb), "free": gb(hardware.vram_free_gb)}
        if used > 1.5:
            checks.append(Check("VRAM", "warn", "vram.busy", {**sizes, "used": gb(used)}))
        else:
            checks.append(Check("VRAM", "ok", "vram.free", sizes))
        if not hardware.bf16:
            checks.append(Check("bf16", "fail", "bf16.missing"))
    elif hardware.accelerator == "mps":
        checks.append(Check("device", "ok", f"device.mps{suffix}", {"total": gb(hardware.vram_total_gb)}))
    else:
        checks.append(Check("device", "warn", "device.cpu"))
    checks.append(
        Check(
            "RAM",
            "ok" if hardware.ram_total_gb >= 32 else "warn",
            "ram.size",
            {"total": gb(hardware.ram_total_gb), "available": gb(hardware.ram_available_gb)},
        )
    )
    return checks


def config_checks(settings: Settings) -> list[Check]:
    """The config against the models' official recommendations."""
    checks = []
    for model_id in DEFAULT_MODELS:
        dtype = settings.model(model_id).torch_dtype
        status: Status = {"float16": "fail", "float32": "warn"}.get(dtype, "ok")  # type: ignore[assignment]
        dtype_code = dtype if dtype in ("float16", "float32") else "bfloat16"
        checks.append(Check(f"models.{model_id}.torch_dtype", status, f"dtype.{dtype_code}"))
    gen = settings.generation
    guidance = "generation.default_guidance_scale"
    if gen.default_guidance_scale not in (None, 0.0):
        checks.append(Check(guidance, "fail", "guidance.wrong", {"value": f"{gen.default_guidance_scale:g}"}))
    else:
        checks.append(Check(guidance, "ok", "guidance.official"))
    official = z_image_turbo_steps()
    version = ".".join(map(str, diffusers_version()))
    steps = gen.default_num_inference_steps
    name = "generation.default_num_inference_steps"
    values = {"official": str(official), "version": version}
    if steps is None:
        checks.append(Check(name, "ok", "steps.default", values))
        return [*checks, *offload_checks(settings)]
    values["steps"] = str(steps)
    if steps != official:
        # The documents' "9 steps" meant 8 forwards in diffusers < 0.39; now it is 9.
        steps_code = "steps.nine" if steps == 9 and official == 8 else "steps.other"
        checks.append(Check(name, "warn", steps_code, values))
    else:
        checks.append(Check(name, "ok", "steps.official", values))
    return [*checks, *offload_checks(settings)]


def offload_checks(settings: Settings) -> list[Check]:
    """The documents' offload switches, which pin one profile whatever the card."""
    checks = []
    device = settings.device
    if device.legacy_profile and device.memory_profile == "auto":
        checks.append(
            Check("device offload switches", "warn", "offload.legacy", {"profile": device.legacy_profile})
        )
    return checks


def files_check(spec: ModelSpec, folder: Any, hardware: Hardware) -> Check:
    """Is the model on disk, and if not, would it fit?"""
    name = f"{spec.id} files"
    model = {"model": spec.id}
    if folder is not None:
        return Check(name, "ok", "files.present", {**model, "folder": str(folder)})
    if spec.tiny:
        return Check(name, "ok", "files.tiny", model)
    need = gb(spec.download_bytes / GIB)
    free = hardware.disk_free
    if free is None:
        return Check(name, "warn", "files.missing", {**model, "need": need})
    sizes = {**model, "need": need, "free": gb(free / GIB)}
    if free < spec.download_bytes * 1.05:
        return Check(name, "fail", "files.no_space", sizes)
    return Check(name, "ok", "files.space", sizes)


def plan_check(plan: MemoryPlan) -> Check:
    """Will the model run here, and how: its plan, what it needs and what the machine has."""
    details = {
        "plan": plan.describe(),
        "profile": plan.profile,
        "accelerator": plan.accelerator,
        "weights": plan.stored_weights,
        # Flags as "yes"/"" so every detail is text; the web UI rebuilds the plan's words from these.
        "vae_tiling": "yes" if plan.vae_tiling else "",
        "pinned_on_the_fly": "yes" if plan.pinned_on_the_fly else "",
        "attention": plan.attention_backend,
    }
    details["ram"], details["ram_budget"] = need_and_have(plan.predicted_peak_ram_gb, plan.ram_budget_gb)
    if plan.vram_budget_gb is not None:
        details["vram"], details["vram_budget"] = need_and_have(
            plan.predicted_peak_vram_gb, plan.vram_budget_gb
        )
    if plan.accelerator == "cpu":
        code, status = ("plan.cpu", "ok") if plan.fits_ram else ("plan.cpu_no_ram", "fail")
    elif not plan.fits_vram:
        code, status = "plan.no_vram", "fail"
    elif not plan.fits_ram:
        code, status = "plan.no_ram", "warn"
    else:
        code, status = "plan.fits", "ok"
    return Check(plan.model_id, status, code, details)  # type: ignore[arg-type]


def extra_checks(planner: Any, spec: ModelSpec) -> list[Check]:
    """The default job planned again with what a control image and a hires pass add beside the pipeline.

    Each line says the extra model, its bytes and the plan the job then gets (which may step down from the
    default job's: the extra counts against the same card).
    """
    from imagestudio.memory.extras import controlnet_bytes, needs_tiles, tile_side, upscaler_bytes
    from imagestudio.memory.planner import workload_for
    from imagestudio.memory.sizes import DTYPE_BYTES
    from imagestudio.registry import controlnet_for, get_upscaler

    if spec.task != "text-to-image":
        return []
    settings = planner.settings
    base = workload_for(spec, None, settings)
    dtype_bytes = DTYPE_BYTES[settings.model(spec.id).torch_dtype]
    checks = []
    net = controlnet_for(spec.id)
    if net is not None:
        extra = controlnet_bytes(net, dtype_bytes)
        plan = planner.plan(spec, replace(base, controlnet_bytes=extra))
        checks.append(_extra_check(spec, plan, "plan.controlnet", extra, {"controlnet": net.id}))
    upscaler = get_upscaler(settings.upscale.default_upscaler)
    width = round(base.width * DOCTOR_HIRES_SCALE / 16) * 16
    height = round(base.height * DOCTOR_HIRES_SCALE / 16) * 16
    if needs_tiles(spec, width, height):
        width = height = tile_side(spec)
    extra = upscaler_bytes(upscaler, dtype_bytes)
    hires = replace(
        base, width=width, height=height, input_images=1, input_area=width * height, upscaler_bytes=extra
    )
    details = {"upscaler": upscaler.id, "scale": f"{DOCTOR_HIRES_SCALE:g}", "width": str(width)}
    details["height"] = str(height)
    checks.append(_extra_check(spec, planner.plan(spec, hires), "plan.hires", extra, details))
    return checks


def _extra_check(spec: ModelSpec, plan: MemoryPlan, code: str, extra: int, details: dict[str, str]) -> Check:
    """A :func:`plan_check` of ``plan`` under ``code``: the extra's size and the peak it leads to."""
    base = plan_check(plan).details
    on_card = plan.vram_budget_gb is not None
    peak = plan.predicted_peak_vram_gb if on_card else plan.predicted_peak_ram_gb
    budget = plan.vram_budget_gb if plan.vram_budget_gb is not None else plan.ram_budget_gb
    # An upscaler is tens of MB: two decimals, so it does not read as "adds 0.0 GB".
    size = extra / GIB
    numbers = {"extra": f"{size:.2f}" if size < 1 else gb(size), "peak": gb(peak), "budget": gb(budget)}
    return Check(spec.id, "ok" if plan.fits else "warn", code, {**base, **details, **numbers})


def variant_rows(planner: Any, spec: ModelSpec) -> tuple[list[VariantRow], MemoryPlan]:
    """Each variant's best plan here (as if downloaded), and the best plan with all of them to choose from."""
    from imagestudio.memory.variant_sizes import download_bytes

    sizes = planner.sizes(spec)
    present = planner.present_variants(spec)
    sized = planner.variant_sizes(spec, present)
    rows = [
        VariantRow(
            variant=variant,
            plan=planner.plan(spec, variants=(variant.name,)),
            download_bytes=download_bytes(spec, variant, sizes, sized[variant.name]),
            sized=sized[variant.name],
        )
        for variant in spec.weight_variants
    ]
    best = planner.plan(spec, variants=tuple(v.name for v in spec.weight_variants))
    return rows, best


def model_report(spec: ModelSpec, settings: Settings, hardware: Hardware, runs_on: str) -> ModelReport:
    from imagestudio.memory.planner import MemoryPlanner
    from imagestudio.models.locate import find_model_dir

    planner = MemoryPlanner(settings, hardware=hardware, device=runs_on)
    plan = planner.plan(spec)
    sizes = planner.sizes(spec)
    folder = find_model_dir(spec, settings, build_tiny=False)
    rows, best = variant_rows(planner, spec)
    return ModelReport(
        spec=spec,
        plan=plan,
        params={name: c.params for name, c in sizes.components.items()},
        downloaded=folder is not None,
        checks=[files_check(spec, folder, hardware)],
        extras=extra_checks(planner, spec),
        variants=rows,
        best=best,
    )


def run_doctor(
    settings: Settings,
    model_ids: list[str] | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
) -> DoctorReport:
    """Probe (or simulate) the machine, check the config, and plan every model."""
    from imagestudio.hardware import probe_hardware, simulate_hardware

    specs = [get_model(m) for m in (model_ids or DEFAULT_MODELS)]
    for flag, value in (("--simulate-vram", vram_gb), ("--simulate-ram", ram_gb)):
        if value is not None and value <= 0:
            raise ConfigError(f"{flag} {value:g} must be a positive number of GB", param=flag)
    # A simulated card is a CUDA card: a config asking for CUDA (the original documents' one does) is
    # evaluated against it, so the real device is probed as "auto" instead of refusing "cuda" here.
    probe_device = "auto" if vram_gb is not None else settings.device.type
    hardware = probe_hardware(probe_device, settings.models_dir)
    if vram_gb is not None or ram_gb is not None:
        hardware = simulate_hardware(hardware, vram_gb, ram_gb)
    runs_on = hardware.accelerator
    checks = [*hardware_checks(hardware), *config_checks(settings), allocator_check()]
    return DoctorReport(
        hardware=hardware,
        checks=checks,
        models=[model_report(spec, settings, hardware, runs_on) for spec in specs],
    )
