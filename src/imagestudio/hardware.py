"""What machine this is. Every probe is a function call; nothing runs at import."""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from imagestudio.errors import ConfigError


def resolve_device(kind: str) -> str:
    """Turn ``device.type`` into a torch device string; ``auto`` prefers CUDA, then MPS, then CPU."""
    import torch

    if kind == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device.type is cuda but this torch has no CUDA device (a CPU build of torch, or no NVIDIA "
            "driver); install the CUDA build of torch (see README) or set device.type: auto",
            param="device.type",
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device.type is mps but Apple MPS is not available here", param="device.type")
    return kind


GIB = 1024**3

#: What a simulated card is assumed to support: a current consumer NVIDIA GPU (Ampere or newer).
SIMULATED_COMPUTE_CAPABILITY = (8, 9)


@dataclass(frozen=True)
class Hardware:
    """One snapshot of the machine. Memory sizes are bytes; ``*_gb`` properties are GiB (1024³).

    ``vram_*`` is accelerator memory: a CUDA card's own memory, Apple's recommended working set on MPS,
    and 0 on a CPU-only machine (where the models live in system RAM).
    """

    accelerator: Literal["cuda", "mps", "cpu"]
    name: str
    vram_total: int
    #: Free accelerator memory plus what this process already holds in torch's cache: what a new plan
    #: may count on (memory held by other programs is not).
    vram_free: int
    bf16: bool
    compute_capability: tuple[int, int] | None
    ram_total: int
    ram_available: int
    disk_free: int | None
    simulated: bool = False

    @property
    def vram_total_gb(self) -> float:
        return self.vram_total / GIB

    @property
    def vram_free_gb(self) -> float:
        return self.vram_free / GIB

    @property
    def ram_total_gb(self) -> float:
        return self.ram_total / GIB

    @property
    def ram_available_gb(self) -> float:
        return self.ram_available / GIB

    def as_dict(self) -> dict[str, object]:
        def gb(value: int | None) -> float | None:
            return None if value is None else round(value / GIB, 2)

        return {
            "accelerator": self.accelerator,
            "name": self.name,
            "vram_total_gb": gb(self.vram_total),
            "vram_free_gb": gb(self.vram_free),
            "bf16": self.bf16,
            "compute_capability": list(self.compute_capability) if self.compute_capability else None,
            "ram_total_gb": gb(self.ram_total),
            "ram_available_gb": gb(self.ram_available),
            "disk_free_gb": gb(self.disk_free),
            "simulated": self.simulated,
        }


def _disk_free(folder: Path | None) -> int | None:
    """Free bytes on the filesystem that holds ``folder`` (or its nearest existing parent)."""
    if folder is None:
        return None
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def probe_hardware(device: str = "auto", models_dir: Path | None = None) -> Hardware:
    """Measure the accelerator ``device`` resolves to, system RAM and free disk at ``models_dir``."""
    import psutil
    import torch

    kind = resolve_device(device)
    memory = psutil.virtual_memory()
    ram_total, ram_available = int(memory.total), int(memory.available)
    disk = _disk_free(models_dir)
    if kind.startswith("cuda"):
        index = torch.device(kind).index or 0
        free, total = torch.cuda.mem_get_info(index)
        props = torch.cuda.get_device_properties(index)
        return Hardware(
            accelerator="cuda",
            name=props.name,
            vram_total=int(total),
            vram_free=min(int(total), int(free) + int(torch.cuda.memory_reserved(index))),
            bf16=bool(torch.cuda.is_bf16_supported()),
            compute_capability=(props.major, props.minor),
            ram_total=ram_total,
            ram_available=ram_available,
            disk_free=disk,
        )
    if kind == "mps":
        # Unified memory: the GPU's share is Metal's recommended working set, taken from system RAM.
        recommended = int(torch.mps.recommended_max_memory())
        return Hardware(
            accelerator="mps",
            name="Apple GPU (MPS)",
            vram_total=recommended,
            vram_free=max(0, recommended - int(torch.mps.driver_allocated_memory())),
            bf16=True,
            compute_capability=None,
            ram_total=ram_total,
            ram_available=ram_available,
            disk_free=disk,
        )
    return Hardware(
        accelerator="cpu",
        name=platform.processor() or platform.machine() or "CPU",
        vram_total=0,
        vram_free=0,
        bf16=True,
        compute_capability=None,
        ram_total=ram_total,
        ram_available=ram_available,
        disk_free=disk,
    )


def simulate_hardware(base: Hardware, vram_gb: float | None = None, ram_gb: float | None = None) -> Hardware:
    """``base`` as if it had a CUDA card of ``vram_gb`` GiB (all of it free) and/or ``ram_gb`` GiB of RAM.

    Lets ``doctor`` and the planner answer "how would this run on an 8 GB card?" on any machine.
    """
    if vram_gb is not None and vram_gb <= 0:
        raise ConfigError(
            f"--simulate-vram {vram_gb} must be a positive number of GB", param="--simulate-vram"
        )
    if ram_gb is not None and ram_gb <= 0:
        raise ConfigError(f"--simulate-ram {ram_gb} must be a positive number of GB", param="--simulate-ram")
    changes: dict[str, object] = {"simulated": True}
    if vram_gb is not None:
        size = int(vram_gb * GIB)
        changes.update(
            accelerator="cuda",
            name=f"simulated {vram_gb:g} GB CUDA card",
            vram_total=size,
            vram_free=size,
            bf16=True,
            compute_capability=SIMULATED_COMPUTE_CAPABILITY,
        )
    if ram_gb is not None:
        size = int(ram_gb * GIB)
        changes.update(ram_total=size, ram_available=size)
    return replace(base, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AcceleratorMemory:
    """A CUDA card's memory now, in bytes: the card's free/total, and this process's torch allocator."""

    name: str
    total: int
    free: int
    allocated: int
    peak_allocated: int
    #: ``torch.cuda.memory_stats()``: the allocator's counters (active, reserved, retries, OOMs …).
    stats: dict[str, int]


@dataclass(frozen=True)
class MemoryNow:
    """System RAM and, when ``device`` is a CUDA one, the card's memory (None on CPU and MPS)."""

    ram_total: int
    ram_available: int
    accelerator: AcceleratorMemory | None


def memory_now(device: str) -> MemoryNow:
    """RAM and the accelerator's memory at this moment, for status reports (cheap: no model is touched)."""
    import psutil

    ram = psutil.virtual_memory()
    accelerator = None
    if device.startswith("cuda"):
        import torch

        free, total = torch.cuda.mem_get_info()
        accelerator = AcceleratorMemory(
            name=torch.cuda.get_device_name(),
            total=int(total),
            free=int(free),
            allocated=int(torch.cuda.memory_allocated()),
            peak_allocated=int(torch.cuda.max_memory_allocated()),
            stats={key: int(value) for key, value in torch.cuda.memory_stats().items()},
        )
    return MemoryNow(ram_total=int(ram.total), ram_available=int(ram.available), accelerator=accelerator)


# The probes below are what the engine measures around loads and jobs. They live here, beside the
# machine snapshot, so there is one place that asks torch and psutil how much memory there is.


@dataclass(frozen=True)
class MemorySnapshot:
    """Process resident memory and accelerator memory in use (None when there is no accelerator)."""

    rss_bytes: int
    accelerator_bytes: int | None


@dataclass(frozen=True)
class CudaUsage:
    """One CUDA card's memory in bytes: the card's total and free, and this process's allocator now
    and at its peak since the last :func:`reset_peak_memory`."""

    total: int
    free: int
    allocated: int
    reserved: int
    peak_allocated: int
    peak_reserved: int


def available_ram_bytes() -> int:
    """System RAM available to a new allocation now."""
    import psutil

    return int(psutil.virtual_memory().available)


def process_rss_bytes() -> int:
    """This process's resident memory."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def cuda_index(device: str) -> int | None:
    """The CUDA card ``device`` names, or None when it is not a usable CUDA device."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return torch.device(device).index or 0


def free_accelerator_bytes(device: str) -> int | None:
    """Bytes free on ``device`` now (CUDA); None where torch cannot say (CPU, MPS)."""
    index = cuda_index(device)
    if index is None:
        return None
    import torch

    free, _total = torch.cuda.mem_get_info(index)
    return int(free)


def cuda_usage(device: str) -> CudaUsage | None:
    """The card's and the allocator's memory on ``device`` (None off CUDA)."""
    index = cuda_index(device)
    if index is None:
        return None
    import torch

    free, total = torch.cuda.mem_get_info(index)
    return CudaUsage(
        total=int(total),
        free=int(free),
        allocated=int(torch.cuda.memory_allocated(index)),
        reserved=int(torch.cuda.memory_reserved(index)),
        peak_allocated=int(torch.cuda.max_memory_allocated(index)),
        peak_reserved=int(torch.cuda.max_memory_reserved(index)),
    )


def reset_peak_memory(device: str) -> None:
    """Start a new peak for :func:`cuda_usage` (nothing off CUDA)."""
    index = cuda_index(device)
    if index is not None:
        import torch

        torch.cuda.reset_peak_memory_stats(index)


def memory_snapshot(device: str) -> MemorySnapshot:
    """RSS of this process and, on CUDA/MPS, the accelerator bytes torch has allocated."""
    import torch

    accelerator: int | None = None
    if device.startswith("cuda") and torch.cuda.is_available():
        accelerator = int(torch.cuda.memory_allocated())
    elif device == "mps" and torch.backends.mps.is_available():
        accelerator = int(torch.mps.current_allocated_memory())
    return MemorySnapshot(process_rss_bytes(), accelerator)
