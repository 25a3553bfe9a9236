"""Calibrate a hardware profile at the shapes a set of workloads actually runs.

A generic calibration measures a handful of square and skinny products; a model's time is dominated by its own
shapes (a 128-row product against a 32,000-wide LM head, 32-row expert slices, the fused attention kernel at its
sequence length), whose achieved FLOP/s can differ from the generic points by several times on a CPU. This module
times every distinct product shape the workloads' ops use (`profiler.predict.ops`), the fused attention kernel forward and
backward at each (batch, heads, sequence) the workloads use, element-wise bandwidth across working-set sizes
(cache-resident to DRAM, outputs freshly allocated as in eager mode), zero-filling new tensors by size (large
ones get fresh pages from the operating system on every call) and the rate of exponentials, and returns the
profile with those points added. Each rate is net of the per-op overhead the profile already holds (the predictor
adds that overhead per launch), and carries the min/median/max spread of the repeats. Nothing is fitted to the models' measured times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from profiler.arch import ArchSpec
from profiler.hardware import BandwidthPoint, HardwareProfile, MatmulPoint, Spread
from profiler.measuring.calibration import rate_spread
from profiler.measuring.device import TORCH_DTYPES, Device
from profiler.measuring.stats import TimingStats
from profiler.measuring.timer import time_callable
from profiler.predict.ops import model_ops
from profiler.predict.roofline import ATTENTION_LABELS, matmul_label
from profiler.workload import Workload

log = logging.getLogger(__name__)

# Bytes one element-wise kernel moves (reads + writes), 4 KiB to 768 MiB in steps of 4x.
BANDWIDTH_SIZES = tuple(3 * 2**p for p in range(12, 29, 2))
ZERO_FILL_SIZES = tuple(2**p for p in range(12, 29, 2))  # bytes of a zeroed new tensor, 4 KiB to 256 MiB
EXP_ELEMENTS = 2**24
# Memory-bound microbenchmarks are cheap and vary most (page faults, other processes' memory traffic): at least
# this many repeats each.
MEMORY_REPEATS = 15  # large enough to stream from memory, as the log-softmax over a vocabulary does


# Weight copies a matmul cycles through add up to at least this many bytes, more than any last-level cache, so
# each call reads its weights from memory as a model does (its other weights have evicted them since last use).
COLD_WEIGHT_BYTES = 256 * 2**20
MAX_WEIGHT_COPIES = 1024


def net_rate_spread(work: float, samples_s: Iterable[float], overhead_s: float) -> Spread:
    """`calibration.rate_spread` of the samples less the per-op overhead (the predictor adds it per launch);
    t − overhead is floored at t/2 so a sample barely above the overhead cannot give an absurd rate."""
    return rate_spread(work, TimingStats.from_samples([max(t - overhead_s, t / 2) for t in samples_s]))


def workload_shapes(workloads: Iterable[tuple[ArchSpec, Workload]]) -> tuple[set, dict]:
    """Distinct matmul (shape (m, k, n), layout) pairs, and attention ops keyed by (phase, mnk) with what it takes
    to rebuild them (batch, heads, kv_heads, queries, keys, head_dim, FLOPs), over all the workloads' ops."""
    matmuls, attention = set(), {}
    for arch, workload in workloads:
        for op in model_ops(arch, workload):
            if op.kind == "matmul":
                matmuls.add((op.mnk, op.layout))
            elif op.kind == "attention":
                att = next(g.attention for g in arch.layer_groups)
                rows, head_dim, keys = op.mnk
                queries = rows // (workload.batch * att.num_heads)
                attention[(op.phase, op.mnk)] = (workload.batch, att.num_heads, att.num_kv_heads, queries, keys,
                                                 head_dim, op.flops // op.repeats)
    return matmuls, attention


def _timed(fn: Callable[[], Any], device: Device, repeats: int) -> tuple[float, ...]:
    return time_callable(fn, device, warmup=2, repeats=repeats).samples_s


def time_matmul(m: int, k: int, n: int, layout: str, dtype: torch.dtype, device: Device,
                repeats: int) -> tuple[float, ...]:
    """Samples of [m,k] @ [k,n] in `layout` (an operand marked t is the transposed view of a contiguous tensor,
    as nn.Linear's weight or a saved activation in a weight gradient), with a cache-hot left operand (the
    activation a previous op just wrote) and a cold right one (a different copy each call, see
    COLD_WEIGHT_BYTES)."""
    make = lambda rows, cols, transposed: (  # noqa: E731
        torch.randn(cols, rows, dtype=dtype, device=device.torch_device).t() if transposed
        else torch.randn(rows, cols, dtype=dtype, device=device.torch_device))
    a = make(m, k, layout[0] == "t")
    weight_bytes = k * n * torch.finfo(dtype).bits // 8
    copies = min(max(-(-COLD_WEIGHT_BYTES // weight_bytes), 1), MAX_WEIGHT_COPIES)
    weights = [make(k, n, layout[1] == "t") for _ in range(copies)]
    turn = iter(range(2**62))
    return _timed(lambda: torch.mm(a, weights[next(turn) % copies]), device, repeats)


def time_attention(batch: int, heads: int, kv_heads: int, queries: int, keys: int, head_dim: int,
                   dtype: torch.dtype, device: Device, repeats: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Samples of the causal fused attention forward, and of its backward (forward + backward minus the median
    forward), with the zoo's call (GQA through enable_gqa)."""
    make = lambda h, s: torch.randn(batch, h, s, head_dim, dtype=dtype, device=device.torch_device,  # noqa: E731
                                    requires_grad=True)
    q, k, v = make(heads, queries), make(kv_heads, keys), make(kv_heads, keys)
    causal = queries == keys and queries > 1

    def forward() -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=kv_heads != heads)

    grad = torch.randn(batch, heads, queries, head_dim, dtype=dtype, device=device.torch_device)
    with torch.no_grad():
        forward_samples = _timed(forward, device, repeats)
    both = _timed(lambda: torch.autograd.backward(forward(), grad), device, repeats)
    forward_median = sorted(forward_samples)[len(forward_samples) // 2]
    return forward_samples, tuple(max(t - forward_median, t / 10) for t in both)


def time_elementwise(bytes_moved: int, dtype: torch.dtype, device: Device, repeats: int) -> tuple[float, ...]:
    """Samples of an add that moves `bytes_moved` bytes (two reads, one write) into a newly allocated output, as
    eager ops do: a large output costs fresh pages from the operating system on every call."""
    n = max(bytes_moved // (3 * torch.finfo(dtype).bits // 8), 1)
    a, b = (torch.randn(n, dtype=dtype, device=device.torch_device) for _ in range(2))
    return _timed(lambda: torch.add(a, b), device, repeats)


def time_zero_fill(size: int, device: Device, repeats: int) -> tuple[float, ...]:
    """Samples of torch.zeros of `size` bytes: a new tensor each call, as a gradient table is."""
    return _timed(lambda: torch.zeros(max(size // 4, 1), device=device.torch_device), device, repeats)


def time_exp(elements: int, dtype: torch.dtype, device: Device, repeats: int) -> tuple[float, ...]:
    """Samples of torch.exp over `elements` numbers into a new output."""
    x = torch.randn(elements, dtype=dtype, device=device.torch_device)
    return _timed(lambda: torch.exp(x), device, repeats)


def calibrate_for_workloads(profile: HardwareProfile, workloads: list[tuple[ArchSpec, Workload]], device: Device,
                            repeats: int = 5, progress: bool = False) -> HardwareProfile:
    """`profile` with matmul points (labels `matmul_label(layout)`) at every product shape and operand layout of the
    workloads, attention points
    (labels `ATTENTION_LABELS`) and an element-wise bandwidth-by-size table, measured on `device`."""
    dtypes = {w.dtype for _, w in workloads}
    if len(dtypes) != 1:
        raise ValueError(f"workloads must share one dtype, got {sorted(dtypes)}")
    dtype_name = dtypes.pop()
    dtype, overhead = TORCH_DTYPES[dtype_name], profile.op_overhead_s
    matmuls, attention = workload_shapes(workloads)
    points = []
    for (m, k, n), layout in tqdm(sorted(matmuls), desc="matmul shapes", disable=not progress, leave=False):
        samples = time_matmul(m, k, n, layout, dtype, device, repeats)
        points.append(MatmulPoint(dtype_name, matmul_label(layout), m, n, k,
                                  net_rate_spread(2 * m * k * n, samples, overhead)))
    seen = {}
    for (phase, (rows, head_dim, keys)), spec in tqdm(sorted(attention.items()), desc="attention",
                                                      disable=not progress, leave=False):
        key = spec[:6]
        if key not in seen:
            seen[key] = time_attention(*key, dtype, device, repeats)
        forward_samples, backward_samples = seen[key]
        samples = forward_samples if phase == "forward" else backward_samples
        points.append(MatmulPoint(dtype_name, ATTENTION_LABELS[phase], rows, keys, head_dim,
                                  net_rate_spread(spec[6], samples, overhead)))
    memory_repeats = max(repeats, MEMORY_REPEATS)
    bandwidth = tuple(BandwidthPoint(size, net_rate_spread(size, time_elementwise(size, dtype, device, memory_repeats),
                                                           overhead))
                      for size in tqdm(BANDWIDTH_SIZES, desc="bandwidth", disable=not progress, leave=False))
    log.info("calibrated %d matmul shapes, %d attention points, %d bandwidth sizes", len(matmuls),
             len(points) - len(matmuls), len(bandwidth))
    exp_rate = net_rate_spread(EXP_ELEMENTS, time_exp(EXP_ELEMENTS, dtype, device, memory_repeats), overhead)
    zero_fill = tuple(BandwidthPoint(size, net_rate_spread(size, time_zero_fill(size, device, memory_repeats),
                                                           overhead))
                      for size in ZERO_FILL_SIZES)
    efficiency = replace(profile.efficiency, matmul=profile.efficiency.matmul + tuple(points),
                         elementwise_by_size=bandwidth, exp_per_s=exp_rate, zero_fill_by_size=zero_fill,
                         source=profile.efficiency.source + "; plus the compared workloads' own shapes "
                                "(profiler.measuring.model_shapes)")
    return replace(profile, efficiency=efficiency)
