"""The host overhead of a model's step on this device, measured on a null workload.

The roofline (`profiler.predict.roofline`) prices each op's kernel work — FLOPs at the achieved rate, bytes at the
achieved bandwidth. What a step costs besides does not depend on the sizes but on the code: the Python of the
modules and of `generate`'s loop, module calls, views and the dispatcher's nested calls (an eager decode step of
the 6-layer `tiny` issues about 2,500 aten calls for about 300 kernels), each kernel's fixed launch cost, the
autograd engine, the optimizer's loop over tensors. Counting launches and pricing each at the one-element add of
`calibrate` (`op_overhead_s`) misses most of it: on a 2-vCPU AMD EPYC guest, one thread, a view called from
Python costs about 2.1 µs, a nested dispatch about 0.35 µs, a module call about 1.7 µs before its body runs.

So it is measured: the same model in the same mode at the same batch, rebuilt at null widths
(`ModelSource.null_widths`: hidden 16, head_dim 8, a 256-token vocabulary — the kernels then do almost no work),
with `NULL_SEQ_LEN` tokens (or fewer when the point has fewer), through the same harness, clock and threads as the
measurement it will be compared with; less what the roofline itself predicts for the null model's kernels (their
kernel work only, a few per cent of the total). The result is a `HostOverheadPoint` of the profile; the predictor
uses it instead of the per-launch overhead for that model, mode and batch. Nothing is fitted to the timings of the
points it predicts: the null model shares their code, not their sizes. Zoo models only (`null_widths`).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from profiler.hardware import HardwareProfile, HostOverheadPoint, Spread
from profiler.measuring import harness
from profiler.measuring.device import Device
from profiler.predict.roofline import predict
from profiler.source import ModelSource
from profiler.workload import DECODE_TOKENS, Workload, point_workloads

log = logging.getLogger(__name__)

NULL_SEQ_LEN = 16  # tokens per sequence of the null workload (the context, for decode)
# A host time is at least this fraction of the null step's own time (guards the subtraction of its kernels).
MIN_HOST_FRACTION = 0.5


def null_step_seconds(source: ModelSource, mode: str, batch: int, seq_len: int, device: Device, warmup: int,
                      repeats: int, new_tokens: int = DECODE_TOKENS) -> Spread:
    """Seconds of one step of `source` in `mode` (forward, train, prefill or decode) as min/median/max over the
    repeats, timed as `compare` times it: prefill = `generate` of one token, decode = (generate of new_tokens + 1
    tokens − prefill) ÷ new_tokens."""
    module = harness.load_model(source, device, "float32")
    measured_mode = "generate" if mode in ("prefill", "decode") else mode
    result = harness.measure_batch(module, source, measured_mode, device, batch, seq_len, new_tokens + 1, warmup,
                                   repeats, None)
    keys = ("min_s", "p50_s", "max_s")
    if mode == "decode":
        values = list(harness.decode_step_timing(result["timing"], result["prefill"], new_tokens, keys).values())
    else:
        values = [result["prefill" if mode == "prefill" else "timing"][key] for key in keys]
    low, mid, high = sorted(values)
    return Spread(low, mid, high)


def measure_host_overhead(source: ModelSource, mode: str, batch: int, seq_len: int, device: Device,
                          profile: HardwareProfile, warmup: int = 2, repeats: int = 5,
                          new_tokens: int = DECODE_TOKENS) -> HostOverheadPoint:
    """The host time of one step of `source` in `mode` at `batch` (module docstring), keyed by `source.name`."""
    null = source.null_widths()
    null_len = min(seq_len, NULL_SEQ_LEN)
    step = null_step_seconds(null, mode, batch, null_len, device, warmup, repeats, new_tokens)
    workloads = point_workloads(mode, batch, null_len, "float32", new_tokens, profile.device_type)
    kernels = sum(kernel_seconds(predict(null.arch, profile, w)) for w in workloads) / len(workloads)
    host = [max(t - kernels, MIN_HOST_FRACTION * t) for t in (step.min, step.median, step.max)]
    log.info("%s %s B=%d: null step %.4g s, its kernels %.4g s, host %.4g s", source.name, mode, batch,
             step.median, kernels, host[1])
    return HostOverheadPoint(source.name, mode, batch, Spread(*host))


def kernel_seconds(result: dict) -> float:
    """The kernel work of a `predict` document: Σ max(compute, memory) over its ops, overheads left out."""
    return sum(max(row["compute_s"], row["memory_s"]) for row in result["ops"])


def calibrate_host_overheads(profile: HardwareProfile, points: list[tuple[ModelSource, Workload]], device: Device,
                             warmup: int = 2, repeats: int = 5,
                             new_tokens: int = DECODE_TOKENS) -> HardwareProfile:
    """`profile` with a `HostOverheadPoint` for every distinct (zoo model, mode, batch) of `points` (a point's
    seq_len is its prompt, or its context for decode); transformers' models are left to the per-launch
    overhead."""
    measured: dict[tuple[str, str, int], HostOverheadPoint] = {}
    for source, workload in points:
        key = (source.name, workload.mode, workload.batch)
        if source.is_zoo and key not in measured:
            measured[key] = measure_host_overhead(source, workload.mode, workload.batch, workload.seq_len, device,
                                                  profile, warmup, repeats, new_tokens)
    kept = tuple(p for p in profile.efficiency.host_overhead if (p.model, p.mode, p.batch) not in measured)
    efficiency = replace(profile.efficiency, host_overhead=kept + tuple(measured.values()))
    return replace(profile, efficiency=efficiency)
