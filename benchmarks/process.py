"""Run a child process and measure it: wall time, and the CPU time it consumed.

Wall time is what a person waits; on a shared machine it also includes time spent waiting for a free
core. The child's own CPU time (user + system, from ``getrusage(RUSAGE_CHILDREN)``) hardly depends on
what else runs, so it is recorded beside the wall time as the steadier figure.
"""

from __future__ import annotations

import resource
import subprocess
import time
from dataclasses import dataclass, field


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class ProcessTimer:
    """Runs ``argv`` as a child each call; returns wall seconds and keeps each run's CPU seconds."""

    argv: list[str]
    env: dict[str, str]
    what: str
    timeout: float = 600.0
    cpu: list[float] = field(default_factory=list)
    last: subprocess.CompletedProcess[str] | None = None

    def __call__(self) -> float:
        cpu_before = _children_cpu()
        started = time.perf_counter()
        done = subprocess.run(
            self.argv, capture_output=True, text=True, env=self.env, timeout=self.timeout, check=False
        )
        wall = time.perf_counter() - started
        self.cpu.append(_children_cpu() - cpu_before)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [""]
            raise RuntimeError(f"{self.what} exited {done.returncode}: {lines[-1][:200]}")
        self.last = done
        return wall

    def measured_cpu(self, repeats: int) -> list[float]:
        """CPU seconds of the measured runs (the last ``repeats``; warm-up runs come first)."""
        return self.cpu[-repeats:]
