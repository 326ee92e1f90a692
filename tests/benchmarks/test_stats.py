"""The runner's statistics: quantiles, summaries, paired ratios and interleaving."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.stats import interleaved, median, paired_ratios, quantile, repeated, summarize, timed


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 10])
@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.75, 1.0, 0.1])
def test_quantile_matches_numpy_linear(size: int, q: float) -> None:
    values = list(np.random.default_rng(size).normal(size=size))
    assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))


def test_quantile_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="no values"):
        quantile([], 0.5)
    with pytest.raises(ValueError, match="outside"):
        quantile([1.0], 1.5)


def test_summary_of_known_samples() -> None:
    summary = summarize([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (summary.n, summary.median, summary.q1, summary.q3) == (5, 3.0, 2.0, 4.0)
    assert (summary.min, summary.max, summary.iqr) == (1.0, 5.0, 2.0)
    assert summary.as_dict()["median"] == 3.0
    assert median([4.0, 1.0]) == 2.5


def test_paired_ratios() -> None:
    assert paired_ratios([2.0, 3.0], [1.0, 2.0]) == [2.0, 1.5]
    with pytest.raises(ValueError, match="equal counts"):
        paired_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="zero"):
        paired_ratios([1.0], [0.0])


def test_interleaved_alternates_order_and_discards_warmup() -> None:
    calls: list[str] = []

    def side(name: str, value: float):
        def run() -> float:
            calls.append(name)
            return value + len(calls)

        return run

    a, b = interleaved(side("A", 0.0), side("B", 100.0), repeats=4, warmup=1)
    assert calls == ["A", "B", "A", "B", "B", "A", "A", "B", "B", "A"]
    # Each side's samples are its own measurements, in the order they were taken (warm-up dropped).
    assert a == [3.0, 6.0, 7.0, 10.0]
    assert b == [104.0, 105.0, 108.0, 109.0]


def test_repeated_and_timed() -> None:
    counter = []
    samples = repeated(timed(lambda: counter.append(1)), repeats=3, warmup=2)
    assert len(samples) == 3
    assert len(counter) == 5
    assert all(s >= 0 for s in samples)
    with pytest.raises(ValueError):
        repeated(lambda: 0.0, repeats=0)
    with pytest.raises(ValueError):
        interleaved(lambda: 0.0, lambda: 0.0, repeats=0)
