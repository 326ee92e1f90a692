"""Small, dependency-free statistics for noisy timings: medians, quartiles, paired ratios.

The machines these run on are shared and noisy, so every figure is a median with its interquartile
range, and app-versus-baseline comparisons are made pair by pair from interleaved runs: a drift in the
machine's load then hits both sides of a pair alike and largely cancels in their ratio.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return quantile(values, 0.5)


@dataclass(frozen=True)
class Summary:
    """Median and spread of one set of samples."""

    n: int
    median: float
    q1: float
    q3: float
    min: float
    max: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(values: Sequence[float]) -> Summary:
    return Summary(
        n=len(values),
        median=median(values),
        q1=quantile(values, 0.25),
        q3=quantile(values, 0.75),
        min=min(values),
        max=max(values),
    )


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """``a[i] / b[i]`` for each interleaved pair (same length required; a zero denominator is an error)."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} samples against {len(denominators)}: pairs need equal counts")
    if any(b == 0 for b in denominators):
        raise ValueError("a baseline sample is zero: the ratio is undefined")
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def interleaved(
    run_a: Callable[[], float], run_b: Callable[[], float], repeats: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Run ``run_a`` and ``run_b`` alternately and return their measurements.

    Each callable measures itself and returns the figure (seconds, bytes …), so it can leave set-up out of
    the measurement. Warm-up rounds run both and are discarded. Pairs alternate their order (A B, B A,
    A B …) so that neither side always runs right after the other: a cache warmed, or a load spike that
    started, by the first of a pair does not always favour the same side.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        run_a()
        run_b()
    samples_a: list[float] = []
    samples_b: list[float] = []
    for index in range(repeats):
        if index % 2 == 0:
            samples_a.append(run_a())
            samples_b.append(run_b())
        else:
            samples_b.append(run_b())
            samples_a.append(run_a())
    return samples_a, samples_b


def repeated(run: Callable[[], float], repeats: int, warmup: int = 1) -> list[float]:
    """Warm-up, then ``repeats`` measurements of one thing."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        run()
    return [run() for _ in range(repeats)]


def timed(action: Callable[[], Any]) -> Callable[[], float]:
    """Wrap ``action`` so that calling the wrapper runs it and returns its wall time in seconds."""

    def run() -> float:
        started = time.perf_counter()
        action()
        return time.perf_counter() - started

    return run
