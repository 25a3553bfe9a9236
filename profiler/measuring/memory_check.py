"""A second measure of CPU peak memory, independent of the tracker in `device.py`: the CPU allocator's own record.

`torch.profiler.profile(profile_memory=True)` makes PyTorch's default CPU allocator report every block it hands
out (`[memory]` events with +bytes, the size requested) and every block it takes back (−bytes). Summed in order,
they give the bytes of tensor memory the allocator holds at each moment — including scratch tensors that a
kernel allocates and frees inside one op, which the tracker cannot see, and nothing allocated elsewhere (oneDNN's
own buffers, numpy arrays, the interpreter).

The allocator reports a free only if it saw the allocation: a block allocated before the profile began is freed
silently (PyTorch logs "Memory block of unknown size was allocated before the profiling started"). So the profile
must cover everything the measured call frees — `allocator_peak` runs `setup` (build the model, warm the step
up) inside the profile before `step`. The allocator also keeps its table of block sizes between profiles, so
a later profile in the same process can misreport frees of blocks allocated in between; measure in a fresh
process.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from torch.profiler import DeviceType, ProfilerActivity, profile, record_function

from profiler.measuring.device import MemoryStats

_STEP_LABEL = "allocator_peak.step"


def allocator_peak(step: Callable[[], Any], setup: Callable[[], Any] | None = None) -> MemoryStats:
    """Bytes the CPU allocator holds for tensors around one call of `step`, from its own events.

    Runs `setup()` (if given) and then `step()` under `torch.profiler.profile(profile_memory=True)`. Every
    number counts only blocks allocated since the profile began, so `start_bytes` is what `setup` allocated and
    did not free (the model, its gradients and optimizer state when `setup` builds them), `peak_bytes` the most
    held at any allocation during `step`, `end_bytes` what is held after it. Sizes are the bytes requested,
    unrounded."""
    gc.collect()  # garbage allocated before the profile, freed inside it, would go unreported
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        if setup is not None:
            setup()
        with record_function(_STEP_LABEL):
            step()
    # The raw event list, where every allocator event stands alone (prof.events() folds those inside an op into it).
    events = prof.profiler.kineto_results.events()
    (label,) = [e for e in events if e.name() == _STEP_LABEL]
    changes = sorted(((e.start_ns(), e.nbytes()) for e in events
                      if e.name() == "[memory]" and e.device_type() == DeviceType.CPU),
                     key=lambda change: change[0])
    held_before = sum(nbytes for time_ns, nbytes in changes if time_ns < label.start_ns())
    during = [nbytes for time_ns, nbytes in changes if label.start_ns() <= time_ns <= label.end_ns()]
    held = list(accumulate(during, initial=held_before))
    return MemoryStats(start_bytes=held_before, peak_bytes=max(held), end_bytes=held[-1],
                       method="cpu: torch.profiler profile_memory events of the CPU allocator "
                              "(blocks allocated since the profile began; bytes requested)")
