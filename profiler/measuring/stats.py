"""Statistics of repeated timings: mean, sample standard deviation and percentiles.

Percentiles use linear interpolation between closest ranks (Hyndman & Fan 1996, definition 7; numpy's default
`method="linear"`, also R's and Excel's PERCENTILE.INC): for n sorted samples x[0..n-1], the q-th percentile sits
at rank r = (n - 1)·q/100 and is x[floor r] + (r - floor r)·(x[floor r + 1] - x[floor r]). It never leaves the
range of the data, so p99 of 10 samples lies between the 9th and the 10th. With few repeats the high percentiles are
close to the maximum; report them with the number of samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERCENTILES = (50, 95, 99)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of `samples` by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("samples must be non-empty")
    if not 0 <= q <= 100:
        raise ValueError(f"q={q!r} must be in [0, 100]")
    return float(np.percentile(np.asarray(samples, dtype=float), q, method="linear"))


@dataclass(frozen=True)
class TimingStats:
    """Seconds per call over `n` repeats. `std` is the sample standard deviation (n - 1 in the denominator; 0 for
    a single sample)."""

    samples_s: tuple[float, ...]
    mean: float
    std: float
    min: float
    max: float
    p50: float
    p95: float
    p99: float

    @property
    def n(self) -> int:
        return len(self.samples_s)

    @classmethod
    def from_samples(cls, samples_s: Sequence[float]) -> TimingStats:
        if not samples_s:
            raise ValueError("samples_s must hold at least one timing")
        if any(s < 0 for s in samples_s):
            raise ValueError(f"samples_s must be durations >= 0 seconds, got {list(samples_s)}")
        data = np.asarray(samples_s, dtype=float)
        std = float(data.std(ddof=1)) if len(data) > 1 else 0.0
        p50, p95, p99 = (percentile(samples_s, q) for q in PERCENTILES)
        return cls(samples_s=tuple(float(s) for s in samples_s), mean=float(data.mean()), std=std,
                   min=float(data.min()), max=float(data.max()), p50=p50, p95=p95, p99=p99)

    def to_dict(self) -> dict[str, float | int]:
        """Summary in seconds for JSON output (the samples themselves are left out)."""
        return {"n": self.n, "mean_s": self.mean, "std_s": self.std, "min_s": self.min, "max_s": self.max,
                "p50_s": self.p50, "p95_s": self.p95, "p99_s": self.p99}
