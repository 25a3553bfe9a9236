"""`time_callable`: warm-up calls, then timed repeats, each ending only when the device has finished."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from complexity.inputs import require_int
from profiler.measuring.device import Device
from profiler.measuring.stats import TimingStats

log = logging.getLogger(__name__)


def tqdm_disable(progress: bool | None) -> bool | None:
    """tqdm's `disable` for a progress flag: True shows, False hides, None shows only on a terminal."""
    return None if progress is None else not progress


def time_callable(fn: Callable[[], Any], device: Device, warmup: int = 3, repeats: int = 10,
                  progress: bool | None = False, desc: str = "timing") -> TimingStats:
    """Call `fn` `warmup` times untimed (first calls pay for lazy initialisation, allocator growth and kernel
    selection), synchronise, then time `repeats` calls with `device.time_call` — each timing ends after the
    device has finished that call's work, so queued GPU kernels are never left out or counted twice.

    `progress` shows a tqdm bar over the repeats on stderr (None: only on a terminal)."""
    require_int("warmup", warmup, 0)
    require_int("repeats", repeats, 1)
    for _ in range(warmup):
        fn()
    device.synchronize()
    repeat_range = tqdm(range(repeats), desc=desc, disable=tqdm_disable(progress), leave=False)
    samples = [device.time_call(fn) for _ in repeat_range]
    stats = TimingStats.from_samples(samples)
    log.info("%s: %d repeats, mean %.3g s, p50 %.3g s", desc, stats.n, stats.mean, stats.p50)
    return stats
