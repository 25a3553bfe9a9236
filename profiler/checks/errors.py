"""The summary every check gives of its relative errors (error = predicted ÷ reference − 1, a fraction, not %):
the median and the largest |error|, and, against a tolerance, how many are within it. `profiler.checks.compare`
(measured on this machine) and `profiler.checks.timings` (published timings) both report it."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def abs_error_summary(errors: Sequence[float], tolerance: float | None = None,
                      prefix: str = "") -> dict[str, float | int | None]:
    """`{prefix}median_abs_error` and `{prefix}max_abs_error` of `errors` (both None when there are none) and,
    with a `tolerance`, `{prefix}within_tolerance`: how many have |error| <= tolerance."""
    magnitudes = [abs(error) for error in errors]
    out: dict[str, float | int | None] = {
        f"{prefix}median_abs_error": statistics.median(magnitudes) if magnitudes else None,
        f"{prefix}max_abs_error": max(magnitudes, default=None),
    }
    if tolerance is not None:
        out[f"{prefix}within_tolerance"] = sum(m <= tolerance for m in magnitudes)
    return out
