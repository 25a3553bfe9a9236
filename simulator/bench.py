"""Timing of `simulate_many` on random architectures and of one `simulate` call (`python -m profiler simulate
--benchmark N`). Wall-clock seconds from time.perf_counter; the best of `repeats` runs, as timeit advises."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from complexity.inputs import require_int
from simulator import architecture
from simulator.config import DEFAULT_CONFIG, SimulatorConfig
from simulator.core import simulate, simulate_many


def random_packed(n: int, rng: np.random.Generator, config: SimulatorConfig = DEFAULT_CONFIG) -> np.ndarray:
    """`n` random valid architectures, packed: sub-architecture count, each depth and each width uniform in range."""
    slots, max_depth = config.MAX_SUBARCHES, config.DEPTH_RANGE[1]
    counts = rng.integers(config.MIN_SUBARCHES, slots + 1, size=(n, 1, 1))
    depths = rng.integers(config.DEPTH_RANGE[0], max_depth + 1, size=(n, slots, 1))
    widths = rng.integers(config.FLAX_RANGE[0], config.FLAX_RANGE[1] + 1, size=(n, slots, max_depth))
    keep = (np.arange(slots)[None, :, None] < counts) & (np.arange(max_depth)[None, None, :] < depths)
    return np.where(keep, widths, 0)


def best_of(repeats: int, fn: Any) -> float:
    """The fastest of `repeats` timed calls of fn(), in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def benchmark(n: int, days: float = 30.0, repeats: int = 3, single_calls: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Seconds for simulate_many on `n` random architectures (as lists, and pre-packed), and µs per simulate call."""
    require_int("n", n, 1, note="architectures per simulate_many call")
    packed = random_packed(n, np.random.default_rng(seed))
    lists = [[list(sub) for sub in architecture.unpack(row)] for row in packed]
    calls = lists[:single_calls]
    per_call = best_of(repeats, lambda: [simulate(a, days) for a in calls]) / len(calls)
    return {
        "architectures": n, "training_days": days, "repeats": repeats,
        "simulate_many_lists_s": best_of(repeats, lambda: simulate_many(lists, days, noise=True, seed=1)),
        "simulate_many_packed_s": best_of(repeats, lambda: simulate_many(packed, days, noise=True, seed=1)),
        "pack_s": best_of(repeats, lambda: architecture.pack(lists, DEFAULT_CONFIG)),
        "simulate_per_call_us": per_call * 1e6, "simulate_calls_timed": len(calls),
    }
