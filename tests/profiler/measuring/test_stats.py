"""Statistics of timings on hand-checked lists."""

from __future__ import annotations

import math

import pytest

from profiler.measuring.stats import TimingStats, percentile


def test_percentiles_interpolate_between_closest_ranks():
    samples = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    # rank r = (n - 1) q / 100: p50 -> 4.5 -> 5.5; p95 -> 8.55 -> 9.55; p99 -> 8.91 -> 9.91
    assert percentile(samples, 50) == pytest.approx(5.5)
    assert percentile(samples, 95) == pytest.approx(9.55)
    assert percentile(samples, 99) == pytest.approx(9.91)
    assert percentile(samples, 0) == 1.0 and percentile(samples, 100) == 10.0


def test_percentile_ignores_input_order_and_handles_one_sample():
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.25], 99) == 0.25


def test_stats_mean_and_sample_std():
    stats = TimingStats.from_samples([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert stats.mean == 5.0
    assert stats.std == pytest.approx(math.sqrt(32 / 7))  # squared deviations sum to 32, n - 1 = 7
    assert (stats.min, stats.max, stats.n) == (2.0, 9.0, 8)
    assert stats.p50 == 4.5
    assert stats.to_dict()["p95_s"] == pytest.approx(7.0 + 0.65 * 2.0)  # rank 6.65 between 7 and 9


def test_single_sample_has_zero_std():
    stats = TimingStats.from_samples([0.5])
    assert (stats.mean, stats.std, stats.p50, stats.p99) == (0.5, 0.0, 0.5, 0.5)


@pytest.mark.parametrize("samples, message", [([], "at least one"), ([1.0, -0.1], "durations >= 0")])
def test_bad_samples(samples, message):
    with pytest.raises(ValueError, match=message):
        TimingStats.from_samples(samples)


def test_bad_percentile():
    with pytest.raises(ValueError, match=r"q=101 must be in \[0, 100\]"):
        percentile([1.0], 101)
