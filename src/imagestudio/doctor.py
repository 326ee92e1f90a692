"""The configuration check: will each model run on this machine, and how?

The original documents' "configuration check", as a service the CLI (``imagestudio doctor``) and other
edges can call: a list of checks (✅ ok / ⚠️ warn / ❌ fail) about the device, memory, disk and the config
against the models' official recommendations, then each model's memory plan with its predicted peaks.
Nothing is downloaded or loaded; models are sized from their stored configs on the meta device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.errors import ConfigError
from imagestudio.registry import ModelSpec, diffusers_version, get_model, z_image_turbo_steps

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.hardware import Hardware
    from imagestudio.memory.plan import MemoryPlan

Status = Literal["ok", "warn", "fail"]
ICONS: dict[str, str] = {"ok": "✅", "warn": "⚠️", "fail": "❌"}

#: The models doctor reports on when none is named: the real ones.
DEFAULT_MODELS = ("z-image-turbo", "qwen-image-edit-2511")

ALLOC_ENV = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")
EXPANDABLE = "expandable_segments:True"

GIB = 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str

    def line(self) -> str:
        return f"{ICONS[self.status]} {self.name}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "message": self.message}


@dataclass(frozen=True)
class ModelReport:
    spec: ModelSpec
    plan: MemoryPlan
    params: dict[str, int]
    downloaded: bool
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.plan.as_dict(),
            "transformer_params": self.params["transformer"],
            "text_encoder_params": self.params["text_encoder"],
            "vae_params": self.params["vae"],
            "downloaded": self.downloaded,
            "checks": [c.as_dict() for c in self.checks],
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
        return Check("allocator", "ok", f"{EXPANDABLE} is set (less fragmentation on long runs)")
    if values:
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        return Check("allocator", "warn", f"{shown} without {EXPANDABLE}: fragmentation can cause OOM")
    return Check(
        "allocator",
        "warn",
        f"PYTORCH_CUDA_ALLOC_CONF is not set; the imagestudio command and start_app scripts set {EXPANDABLE}",
    )


def hardware_checks(hardware: Hardware) -> list[Check]:
    prefix = "simulated: " if hardware.simulated else ""
    checks = []
    if hardware.accelerator == "cuda":
        cc = ".".join(map(str, hardware.compute_capability or ()))
        checks.append(Check("device", "ok", f"{prefix}CUDA {hardware.name} (compute {cc})"))
        used = hardware.vram_total_gb - hardware.vram_free_gb
        status: Status = "warn" if used > 1.5 else "ok"
        checks.append(
            Check(
                "VRAM",
                status,
                f"{hardware.vram_total_gb:.1f} GB total, {hardware.vram_free_gb:.1f} GB free"
                + (f" ({used:.1f} GB used by other programs)" if status == "warn" else ""),
            )
        )
        if not hardware.bf16:
            checks.append(
                Check(
                    "bf16",
                    "fail",
                    "this GPU has no bfloat16 (pre-Ampere): set models.<id>.torch_dtype: float32 "
                    "(float16 gives NaN/black images with these models)",
                )
            )
    elif hardware.accelerator == "mps":
        checks.append(
            Check("device", "ok", f"{prefix}Apple GPU (MPS), {hardware.vram_total_gb:.1f} GB working set")
        )
    else:
        checks.append(
            Check(
                "device",
                "warn",
                "no GPU (CPU build of torch or no driver): the real models would take many minutes per "
                "image; the tiny offline models run fine",
            )
        )
    checks.append(
        Check(
            "RAM",
            "ok" if hardware.ram_total_gb >= 32 else "warn",
            f"{hardware.ram_total_gb:.1f} GB total, {hardware.ram_available_gb:.1f} GB available",
        )
    )
    return checks


def config_checks(settings: Settings) -> list[Check]:
    """The config against the models' official recommendations."""
    checks = []
    for model_id in DEFAULT_MODELS:
        dtype = settings.model(model_id).torch_dtype
        if dtype == "float16":
            checks.append(
                Check(
                    f"models.{model_id}.torch_dtype", "fail", "float16 gives NaN/black images: use bfloat16"
                )
            )
        elif dtype == "float32":
            checks.append(
                Check(
                    f"models.{model_id}.torch_dtype", "warn", "float32 doubles memory; bfloat16 is official"
                )
            )
        else:
            checks.append(Check(f"models.{model_id}.torch_dtype", "ok", "bfloat16 (official)"))
    gen = settings.generation
    if gen.default_guidance_scale not in (None, 0.0):
        checks.append(
            Check(
                "generation.default_guidance_scale",
                "fail",
                f"{gen.default_guidance_scale}: Z-Image-Turbo needs exactly 0 (anything else runs CFG, "
                "doubling the time and degrading the image)",
            )
        )
    else:
        checks.append(Check("generation.default_guidance_scale", "ok", "0 (official for Z-Image-Turbo)"))
    official = z_image_turbo_steps()
    version = ".".join(map(str, diffusers_version()))
    steps = gen.default_num_inference_steps
    if steps is None:
        checks.append(
            Check(
                "generation.default_num_inference_steps",
                "ok",
                f"official ({official} with diffusers {version})",
            )
        )
    elif steps != official:
        hint = (
            " (the documents' 9 = 8 forwards was for diffusers < 0.39; here 9 steps are 9 forwards)"
            if steps == 9 and official == 8
            else ""
        )
        checks.append(
            Check(
                "generation.default_num_inference_steps",
                "warn",
                f"{steps}: official is {official} with diffusers {version}{hint}",
            )
        )
    else:
        checks.append(Check("generation.default_num_inference_steps", "ok", f"{steps} (official)"))
    device = settings.device
    if device.legacy_profile and device.memory_profile == "auto":
        checks.append(
            Check(
                "device offload switches",
                "warn",
                f"enable_cpu_offload/sequential_offload force {device.legacy_profile} on every card; remove "
                "them to let the plan pick the fastest profile that fits",
            )
        )
    return checks


def model_report(spec: ModelSpec, settings: Settings, hardware: Hardware, runs_on: str) -> ModelReport:
    from imagestudio.engine.loader import find_model_dir
    from imagestudio.memory.planner import MemoryPlanner

    planner = MemoryPlanner(settings, hardware=hardware, device=runs_on)
    plan = planner.plan(spec)
    sizes = planner.sizes(spec)
    folder = find_model_dir(spec, settings, build_tiny=False)
    checks = []
    if folder is not None:
        checks.append(Check(f"{spec.id} files", "ok", f"on disk at {folder}"))
    elif spec.tiny:
        checks.append(Check(f"{spec.id} files", "ok", "built on first use (a few MB)"))
    else:
        need = spec.download_bytes / GIB
        free = hardware.disk_free
        if free is None:
            checks.append(Check(f"{spec.id} files", "warn", f"not downloaded ({need:.1f} GB)"))
        elif free < spec.download_bytes * 1.05:
            checks.append(
                Check(
                    f"{spec.id} files",
                    "fail",
                    f"not downloaded: needs {need:.1f} GB, only {free / GIB:.1f} GB free in the models "
                    "folder",
                )
            )
        else:
            checks.append(
                Check(
                    f"{spec.id} files",
                    "ok",
                    f"not downloaded yet: needs {need:.1f} GB, {free / GIB:.1f} GB free in the models folder",
                )
            )
    return ModelReport(
        spec=spec,
        plan=plan,
        params={name: c.params for name, c in sizes.components.items()},
        downloaded=folder is not None,
        checks=checks,
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
    hardware = probe_hardware(settings.device.type, settings.models_dir)
    if vram_gb is not None or ram_gb is not None:
        hardware = simulate_hardware(hardware, vram_gb, ram_gb)
    runs_on = hardware.accelerator
    checks = [*hardware_checks(hardware), *config_checks(settings), allocator_check()]
    return DoctorReport(
        hardware=hardware,
        checks=checks,
        models=[model_report(spec, settings, hardware, runs_on) for spec in specs],
    )
