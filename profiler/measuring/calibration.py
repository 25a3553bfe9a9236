"""Calibration behind `python -m profiler calibrate`: measure what this device achieves and write it as a profile.

Three measurements, each through `time_callable` (warm-up, synchronised repeats):

* **matmul FLOP/s** of [m, k] @ [k, n] (2·m·n·k FLOPs) for square sizes and the shapes a transformer layer runs —
  attention projections (tokens × h × h), MLP up and down (h ↔ 3h), the LM head (h × vocab) and a decode step
  (a few rows against a large matrix, memory-bound) — in float32 and each reduced precision the device runs
  (CPU: bfloat16; CUDA: TF32, bfloat16, float16; MPS: float16, bfloat16).
* **elementwise bandwidth** of a large out-of-place add c = a + b: 3 · N · 4 bytes moved (read a and b, write c)
  per call; tensors far larger than the caches. A copy (2 · N · 4 bytes) is measured too; the larger of the two
  medians is the profile's bandwidth when no published figure (`--base`) is given.
* **per-op overhead**: the time per call of a loop of additions on one-element tensors, one synchronize at the end
  — Python dispatch plus kernel launch, the floor under every op.

Each rate's spread comes from the repeats: min = work / slowest repeat, median = work / median repeat, max = work
/ fastest repeat. Peaks are taken from `--base` (a shipped profile of this device: datasheet peaks, memory, power)
or else are the best rates measured here — a calibrated profile without a base describes what this machine did,
not what a datasheet promises.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from tqdm import tqdm

from profiler.hardware import Efficiency, HardwareProfile, MatmulPoint, Spread, load_profile, profile_from_dict
from profiler.measuring.device import Device, get_device
from profiler.measuring.stats import TimingStats
from profiler.measuring.timer import time_callable, tqdm_disable

log = logging.getLogger(__name__)

FP32_BYTES = 4
# Assumed sustained power when neither --power nor --base gives one (stated in the profile's sources).
ASSUMED_WATTS_PER_CPU_THREAD = 5.0  # a busy server core, ~300 W / 64 cores
ASSUMED_GPU_WATTS = 300.0


@dataclass(frozen=True)
class Plan:
    """What to measure: matmul shapes (label, m, n, k), elements per bandwidth tensor, repeats."""

    shapes: tuple[tuple[str, int, int, int], ...]
    bandwidth_elements: int
    overhead_ops: int
    warmup: int
    repeats: int


def transformer_shapes(tokens: int, hidden: int, vocab: int) -> tuple[tuple[str, int, int, int], ...]:
    """The matmuls of one pre-norm decoder layer and its head at `tokens` tokens and width `hidden`."""
    return (("attention_proj", tokens, hidden, hidden), ("mlp_up", tokens, 3 * hidden, hidden),
            ("mlp_down", tokens, hidden, 3 * hidden), ("lm_head", tokens // 4, vocab, hidden),
            ("decode", 4, 4 * hidden, 4 * hidden))


def plan_for(device_type: str, quick: bool) -> Plan:
    """Sizes that finish in well under a minute: small on a CPU, large enough to fill a GPU there."""
    if quick:
        return Plan(shapes=(("square", 128, 128, 128), ("attention_proj", 256, 128, 128)),
                    bandwidth_elements=2**20, overhead_ops=200, warmup=1, repeats=3)
    if device_type == "cpu":
        squares = tuple(("square", s, s, s) for s in (256, 512, 1024))
        return Plan(shapes=squares + transformer_shapes(tokens=1024, hidden=512, vocab=8192),
                    bandwidth_elements=2**24, overhead_ops=2000, warmup=2, repeats=10)
    squares = tuple(("square", s, s, s) for s in (1024, 2048, 4096, 8192))
    return Plan(shapes=squares + transformer_shapes(tokens=8192, hidden=4096, vocab=32768),
                bandwidth_elements=2**28, overhead_ops=5000, warmup=3, repeats=10)


@contextmanager
def _float32_matmul_precision(precision: str) -> Iterator[None]:
    """"highest" = true fp32 products; "high" lets CUDA use TF32 Tensor Cores."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def runs_dtype(device: Device, dtype: torch.dtype) -> bool:
    """Whether a small matmul in `dtype` runs on the device at all (bf16 on older GPUs and macOS does not)."""
    try:
        a = torch.ones(8, 8, dtype=dtype, device=device.torch_device)
        (a @ a).sum().item()
    except (RuntimeError, TypeError) as err:
        log.info("skipping %s on %s: %s", dtype, device.type, err)
        return False
    return True


def dtypes_for(device: Device) -> list[tuple[str, torch.dtype, str]]:
    """(profile dtype name, torch dtype, float32 matmul precision) for every dtype worth measuring here."""
    candidates = [("float32", torch.float32, "highest")]
    if device.type == "cuda":
        candidates.append(("tfloat32", torch.float32, "high"))
    candidates += [("bfloat16", torch.bfloat16, "highest")]
    if device.type != "cpu":  # CPU float16 matmul is a slow fallback on most machines: not a training dtype
        candidates.append(("float16", torch.float16, "highest"))
    return [c for c in candidates if runs_dtype(device, c[1])]


def rate_spread(work: float, timing: TimingStats) -> Spread:
    """Rates (work per second) from repeated timings: slowest repeat -> min, median -> median, fastest -> max."""
    return Spread(min=work / timing.max, median=work / timing.p50, max=work / timing.min)


def measure_matmul(device: Device, dtype: torch.dtype, m: int, n: int, k: int, plan: Plan) -> Spread:
    """Achieved FLOP/s of [m, k] @ [k, n] into a preallocated output (no allocation in the timed call)."""
    a = torch.randn(m, k, device=device.torch_device).to(dtype)
    b = torch.randn(k, n, device=device.torch_device).to(dtype)
    out = torch.empty(m, n, device=device.torch_device, dtype=dtype)
    timing = time_callable(lambda: torch.mm(a, b, out=out), device, plan.warmup, plan.repeats)
    return rate_spread(2 * m * n * k, timing)


def measure_bandwidth(device: Device, plan: Plan) -> tuple[Spread, Spread]:
    """Bytes/s of c = a + b (3 N fp32 moved) and of dst.copy_(src) (2 N moved)."""
    n = plan.bandwidth_elements
    a, b, c = (torch.rand(n, device=device.torch_device) for _ in range(3))
    add = time_callable(lambda: torch.add(a, b, out=c), device, plan.warmup, plan.repeats)
    copy = time_callable(lambda: c.copy_(a), device, plan.warmup, plan.repeats)
    return rate_spread(3 * n * FP32_BYTES, add), rate_spread(2 * n * FP32_BYTES, copy)


def measure_op_overhead(device: Device, plan: Plan) -> float:
    """Seconds per tiny op: median over repeats of (a loop of `overhead_ops` one-element adds) / ops."""
    x = torch.zeros(1, device=device.torch_device)

    def loop() -> None:
        for _ in range(plan.overhead_ops):
            x.add_(1.0)
    return time_callable(loop, device, plan.warmup, plan.repeats).p50 / plan.overhead_ops


def device_memory_bytes(device: Device) -> int:
    """Memory the device can use: GPU memory on CUDA, physical RAM on CPU and MPS (unified memory)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device.torch_device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else (platform.processor() or platform.machine())


def describe_hardware(device: Device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device.torch_device)
    return (f"{cpu_name()} ({platform.system()}, {os.cpu_count()} logical CPUs), "
            f"torch using {torch.get_num_threads()} thread(s)")


def _assumed_power(device: Device) -> tuple[float, str]:
    if device.type == "cpu":
        watts = ASSUMED_WATTS_PER_CPU_THREAD * torch.get_num_threads()
        return watts, (f"Assumed {ASSUMED_WATTS_PER_CPU_THREAD:g} W per busy CPU thread x {torch.get_num_threads()} "
                       "threads (a server core's share of a ~300 W 64-core socket); not measured, uncertainty x2. "
                       "Pass --power or --base to set it.")
    return ASSUMED_GPU_WATTS, (f"Assumed {ASSUMED_GPU_WATTS:g} W for a busy GPU; not measured. Pass --power or "
                               "--base (a shipped profile of this GPU) to set it.")


def calibrate(device: str | Device = "auto", quick: bool = False, base: str | None = None, name: str | None = None,
              power_watts: float | None = None, progress: bool | None = False,
              only_dtypes: tuple[str, ...] | None = None) -> HardwareProfile:
    """Measure the device and return a validated profile (see the module docstring for what and how).
    `only_dtypes` limits the matmul points to those dtypes (compare needs only its workloads' dtype; a CPU without
    native bfloat16 takes seconds per bfloat16 product)."""
    dev = device if isinstance(device, Device) else get_device(device)
    plan = plan_for(dev.type, quick)
    base_profile = load_profile(base) if base else None
    if base_profile and base_profile.device_type != dev.type:
        raise ValueError(f"--base {base!r} describes a {base_profile.device_type} device, this is {dev.type}")
    started = time.perf_counter()
    dtypes = [d for d in dtypes_for(dev) if only_dtypes is None or d[0] in only_dtypes]
    if not dtypes:
        raise ValueError(f"only_dtypes={only_dtypes!r}: none of them runs on {dev.type}; "
                         f"it runs {[d[0] for d in dtypes_for(dev)]}")
    jobs = [(dtype_name, torch_dtype, precision, shape) for dtype_name, torch_dtype, precision in dtypes
            for shape in plan.shapes]
    points = []
    for dtype_name, torch_dtype, precision, (label, m, n, k) in tqdm(jobs, desc="matmul", leave=False,
                                                                     disable=tqdm_disable(progress)):
        with _float32_matmul_precision(precision):
            spread = measure_matmul(dev, torch_dtype, m, n, k, plan)
        points.append(MatmulPoint(dtype=dtype_name, shape=label, m=m, n=n, k=k, flops_per_s=spread))
        log.info("%s %s %dx%dx%d: %.3g GFLOP/s", dtype_name, label, m, n, k, spread.median / 1e9)
    add, copy = measure_bandwidth(dev, plan)
    overhead = measure_op_overhead(dev, plan)
    elapsed = time.perf_counter() - started

    best = {}
    for point in points:
        best[point.dtype] = max(best.get(point.dtype, 0.0), point.flops_per_s.max)
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    source = (f"Measured by `python -m profiler calibrate{' --quick' if quick else ''}` on {when}: torch "
              f"{torch.__version__}, {describe_hardware(dev)}; {plan.repeats} repeats after {plan.warmup} warm-up "
              "per point; spread = work / (slowest, median, fastest) repeat.")
    efficiency = Efficiency(calibrated=True, source=source, matmul=tuple(points), elementwise_bytes_per_s=add)
    if base_profile:
        power, power_source = base_profile.power_watts, base_profile.sources.get("power_watts", f"from {base}")
        data = {**base_profile.to_dict(), "op_overhead_s": overhead}
    else:
        power, power_source = _assumed_power(dev)
        data = {"device_type": dev.type, "description": describe_hardware(dev),
                "peak_flops_per_s": best, "memory_bandwidth_bytes_per_s": max(add.median, copy.median),
                "memory_bytes": [device_memory_bytes(dev)], "op_overhead_s": overhead,
                "sources": {"peak_flops_per_s": "Best matmul rate measured per dtype (not a datasheet peak).",
                            "memory_bandwidth_bytes_per_s": "Larger median of a measured add (3 N fp32 bytes) and "
                                                            "copy (2 N bytes) of large tensors.",
                            "memory_bytes": "Physical memory (CUDA: the GPU's total memory)."}}
    if power_watts is not None:
        power, power_source = power_watts, "Given on the command line (--power)."
    data.update(name=name or (f"{base}_calibrated" if base else f"calibrated_{dev.type}"), power_watts=power,
                efficiency=efficiency.to_dict(),
                sources={**data["sources"], "power_watts": power_source,
                         "op_overhead_s": f"Measured: median time per one-element add over {plan.overhead_ops} adds."},
                details={**data.get("details", {}), "calibration": {
                    "date": when, "torch": torch.__version__, "device": dev.describe(),
                    "threads": torch.get_num_threads(),
                    "quick": quick, "seconds": round(elapsed, 3),
                    "copy_bytes_per_s": {"min": copy.min, "median": copy.median, "max": copy.max}}})
    return profile_from_dict(data, where="calibrated profile")

