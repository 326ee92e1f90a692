"""What a job really used: accelerator and RAM figures, the plan, where the weights were.

Written to the log after every job and into the image metadata, so that "VRAM shows 0.00 GB with
offload" (a known confusion: after an offloaded job every weight is back in RAM) is explained by the
job's *peak*, measured with ``torch.cuda.max_memory_allocated`` since the job started.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagestudio.memory.plan import MemoryPlan

log = logging.getLogger(__name__)

GIB = 1024**3


@dataclass(frozen=True)
class MemoryReport:
    """One job's memory, in GiB. Accelerator fields are None on a CPU-only run."""

    device: str
    profile: str
    weights: str
    vae_tiling: bool
    plan: str
    predicted_peak_vram_gb: float
    predicted_peak_ram_gb: float
    accelerator_total_gb: float | None
    accelerator_free_gb: float | None
    allocated_gb: float | None
    reserved_gb: float | None
    peak_allocated_gb: float | None
    peak_reserved_gb: float | None
    ram_rss_gb: float
    #: Where each component's weights are after the job (a device, or under offload hooks).
    resident: dict[str, str] = field(default_factory=dict)
    #: Plans that ran out of memory before this one worked (empty when the first plan worked).
    recovered_from: tuple[str, ...] = ()
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recovered_from"] = list(self.recovered_from)
        return data

    def summary(self) -> str:
        parts = [f"plan {self.plan}"]
        if self.peak_allocated_gb is not None:
            parts.append(
                f"peak {self.peak_allocated_gb:.2f} GB allocated / {self.peak_reserved_gb:.2f} GB reserved "
                f"(predicted {self.predicted_peak_vram_gb:.2f}) of {self.accelerator_total_gb:.1f} GB; "
                f"now {self.allocated_gb:.2f} GB allocated, {self.accelerator_free_gb:.2f} GB free"
            )
        parts.append(f"RAM RSS {self.ram_rss_gb:.2f} GB")
        if self.recovered_from:
            parts.append(f"after out-of-memory with: {', '.join(self.recovered_from)}")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


def begin_job(device: str) -> None:
    """Start a job's measurement: reset the accelerator's peak counters."""
    from imagestudio.hardware import reset_peak_memory

    reset_peak_memory(device)


def end_job(device: str, pipe: Any, plan: MemoryPlan, recovered_from: tuple[str, ...] = ()) -> MemoryReport:
    """Measure after a job (started with :func:`begin_job`), log it and return the report."""
    from imagestudio.hardware import cuda_usage, process_rss_bytes
    from imagestudio.memory.apply import resident_components

    usage = cuda_usage(device)
    total = free = allocated = reserved = peak = peak_reserved = None
    if usage is not None:
        total, free = usage.total / GIB, usage.free / GIB
        allocated, reserved = usage.allocated / GIB, usage.reserved / GIB
        peak, peak_reserved = usage.peak_allocated / GIB, usage.peak_reserved / GIB
    note = ""
    if plan.profile != "full" and usage is not None:
        note = (
            f"{plan.profile} keeps weights in RAM between uses, so little accelerator memory is in use "
            "after the job; the peak above is what the job needed"
        )

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    report = MemoryReport(
        device=device,
        profile=plan.profile,
        weights=plan.weights,
        vae_tiling=plan.vae_tiling,
        plan=plan.describe(),
        predicted_peak_vram_gb=plan.predicted_peak_vram_gb,
        predicted_peak_ram_gb=plan.predicted_peak_ram_gb,
        accelerator_total_gb=rounded(total),
        accelerator_free_gb=rounded(free),
        allocated_gb=rounded(allocated),
        reserved_gb=rounded(reserved),
        peak_allocated_gb=rounded(peak),
        peak_reserved_gb=rounded(peak_reserved),
        ram_rss_gb=round(process_rss_bytes() / GIB, 3),
        resident=resident_components(pipe),
        recovered_from=recovered_from,
        note=note,
    )
    log.info("memory: %s", report.summary())
    return report
