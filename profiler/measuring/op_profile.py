"""Per-op times of one real step under `torch.profiler` (`python -m profiler ops`, docs/measuring.md).

`profile_step` calls the step `warmup` times untimed, times `repeats` calls without the profiler (the step's own
time, `profiler.measuring.timer.time_callable` on the device's clock), then runs `repeats` calls under
`torch.profiler.profile` (CPU activity; CUDA too on a CUDA device) and returns the self time of every profiled
event per step, keyed by its call path (the names of its enclosing events, outermost first, then its own name).
Self time = the event's time less its children's, so the self times of all events add up to the profiled time
spent inside events; nothing is counted twice.

Units and clocks: seconds per step (totals over the profiled calls ÷ `repeats`). `self_cpu_s` is the profiler's
host wall-clock self time (also under `clock=cpu`: the profiler has no CPU-time clock); `self_device_s` is the CUDA
kernel time the event itself launched (0 on the CPU). `profiled_step_s` is the time of the profiled calls ÷
repeats on the device's clock (the unprofiled timing's): set beside that timing it shows what the instrument
itself costs.

Nothing here prints or classifies: `profiler.checks.ops` maps the call paths to op categories.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from complexity.inputs import require_int
from profiler.measuring.device import Device
from profiler.measuring.timer import time_callable

Path = tuple[str, ...]


def _path(event: Any) -> Path:
    """Names of `event`'s enclosing events, outermost first, then its own."""
    names = []
    while event is not None:
        names.append(event.name)
        event = event.cpu_parent
    return tuple(reversed(names))


def aggregate_events(events: Any, repeats: int) -> dict[Path, dict[str, float]]:
    """Self time and calls per call path of the profiler's CPU-side events, per step (÷ `repeats`)."""
    require_int("repeats", repeats, 1)
    totals: dict[Path, dict[str, float]] = defaultdict(lambda: {"calls": 0.0, "self_cpu_s": 0.0, "self_device_s": 0.0})
    for event in events:
        if event.device_type != torch.autograd.DeviceType.CPU:  # kernels: counted on the op that launched them
            continue
        row = totals[_path(event)]
        row["calls"] += 1 / repeats
        row["self_cpu_s"] += event.self_cpu_time_total / 1e6 / repeats
        row["self_device_s"] += getattr(event, "self_device_time_total", 0.0) / 1e6 / repeats
    return dict(totals)


def profile_step(step: Callable[[], Any], device: Device, warmup: int = 2, repeats: int = 3) -> dict[str, Any]:
    """The step timed plainly and under `torch.profiler` (module docstring): `timing` (TimingStats dict, the
    device's clock), `profiled_step_s` (the same clock), `events` (a list of {path, calls, self_cpu_s,
    self_device_s}, slowest first) and `repeats`."""
    require_int("warmup", warmup, 0)
    require_int("repeats", repeats, 1)
    timing = time_callable(step, device, warmup, repeats)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        started = device.clock()
        for _ in range(repeats):
            step()
        device.synchronize()
        profiled = (device.clock() - started) / repeats
    rows = [{"path": list(path), **row} for path, row in aggregate_events(prof.events(), repeats).items()]
    rows.sort(key=lambda r: -(r["self_cpu_s"] + r["self_device_s"]))
    return {"repeats": repeats, "timing": timing.to_dict(), "profiled_step_s": profiled, "events": rows}
