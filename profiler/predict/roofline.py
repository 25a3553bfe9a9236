"""Time of a forward pass, training step or decoding step from the model's ops (`profiler.predict.ops`) and a
hardware profile, op by op on a roofline (`python -m profiler predict MODEL --hardware PROFILE`).

Each op takes max(FLOPs ÷ the FLOP/s achievable at its shape, bytes ÷ bandwidth) + launches × per-op overhead
(Williams, Waterman & Patterson 2009, "Roofline"; the overhead term is the fixed cost of issuing one kernel). The
achievable FLOP/s of a matmul or attention op is the profile's calibrated point nearest its product shape; the
bandwidth is the achieved element-wise bandwidth at the bytes one launch of the op moves (cache-resident working
sets run faster; both at the `--estimate` end of their calibrated spread). The fused attention kernel is priced at
points labelled "attention" / "attention_backward" when the profile has them, else as a plain matmul; a matmul at
points of its operand layout ("model_nn", "model_nt", "model_tn") when the profile has them. The
prediction is the sum over the ops: a single device stream runs them one after another.

Host overhead: where the profile holds a measured host time for this model, mode and batch
(`HostOverheadPoint`, measured by `profiler.measuring.host_overhead` on a null workload: the same code at widths
where its kernels do almost no work), that time replaces the per-launch overhead of every op — it covers what the
launch count cannot (Python, module calls, views, the dispatcher's nested calls) — and is split over the phases in
proportion to their launches, as rows named "host_overhead".

MFU (model FLOPs utilisation, Chowdhery et al. 2022 App. B) = matmul FLOPs of the pass ÷ (time × peak FLOP/s of the
precision the products run in: the dtype, or TF32 at `matmul_precision` "high"): matmul FLOPs only, flops.py's
convention, causal attention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from profiler.arch import ArchSpec
from profiler.hardware import ESTIMATES, HardwareProfile
from profiler.predict.ops import Op, model_ops
from profiler.workload import PHASES, Workload

BOUNDS = ("compute", "memory", "overhead")
HOST_OVERHEAD = "host_overhead"  # the op rows carrying a measured host time (module docstring)
# Calibrated points of the fused attention kernel carry these shape labels (`profiler.measuring.model_shapes`).
ATTENTION_LABELS = {"forward": "attention", "backward": "attention_backward"}


@dataclass(frozen=True)
class OpTime:
    """An op with its roofline terms in seconds: compute = FLOPs ÷ achievable FLOP/s (memory ops: elements through
    an exponential ÷ the calibrated exp rate, when the profile has one, else 0), memory =
    bytes ÷ bandwidth, overhead = launches × per-op overhead; seconds = max(compute, memory) + overhead."""

    op: Op
    compute_s: float
    memory_s: float
    overhead_s: float

    @property
    def seconds(self) -> float:
        return max(self.compute_s, self.memory_s) + self.overhead_s

    @property
    def bound(self) -> str:
        """What dominates this op's time: the larger roofline term, or the overhead when it exceeds both."""
        if self.overhead_s > max(self.compute_s, self.memory_s):
            return "overhead"
        return "compute" if self.compute_s >= self.memory_s else "memory"


def matmul_label(layout: str) -> str:
    """Label of calibrated points measured at a model's own product shapes in one operand layout."""
    return f"model_{layout}"


def op_time(op: Op, profile: HardwareProfile, dtype: str, estimate: str = "likely") -> OpTime:
    """The roofline time of one op on `profile` (module docstring); `dtype` is the precision the products run in
    (`Workload.matmul_dtype`)."""
    compute = 0.0
    if op.kind in ("matmul", "attention") and op.flops:
        m, k, n = op.mnk
        label = ATTENTION_LABELS[op.phase] if op.kind == "attention" else matmul_label(op.layout)
        compute = op.flops / profile.matmul_flops_per_s(dtype, m, n, k, estimate, label)
    elif op.exps and profile.efficiency.exp_per_s is not None:
        compute = op.exps / profile.efficiency.exp_per_s.pick(estimate)
    per_launch = op.bytes // max(op.launches, 1)
    memory = op.bytes / profile.elementwise_bytes_per_s(estimate, per_launch) if op.bytes else 0.0
    if op.zero_filled:
        memory += op.zero_filled / profile.zero_fill_bytes_per_s(estimate, op.zero_filled // max(op.launches, 1))
    return OpTime(op, compute, memory, op.launches * profile.op_overhead_s)


def host_overhead_rows(ops: list[Op], host_s: float) -> list[OpTime]:
    """A measured host time as one overhead-only row per phase that has launches, in proportion to them."""
    launches = {phase: sum(op.launches for op in ops if op.phase == phase) for phase in PHASES}
    if not any(launches.values()):  # nothing launches: the host time is the forward's
        launches["forward"] = 1
    total = sum(launches.values())
    return [OpTime(Op(HOST_OVERHEAD, phase, "host", 0, 0, 0), 0.0, 0.0, host_s * count / total)
            for phase, count in launches.items() if count]


def matmul_flops(ops: list[Op]) -> int:
    """FLOPs of the matrix products (matmul and attention ops): the MFU numerator."""
    return sum(op.flops for op in ops if op.kind in ("matmul", "attention"))


def dominant_bound(times: list[OpTime]) -> str:
    """The bound that accounts for the most predicted seconds."""
    share = dict.fromkeys(BOUNDS, 0.0)
    for t in times:
        share[t.bound] += t.seconds
    return max(share, key=share.get)


def predict(arch: ArchSpec, profile: HardwareProfile, workload: Workload, estimate: str = "likely",
            attention_kernel: str = "fused") -> dict[str, Any]:
    """The prediction as plain data (the `--format json` document; keys documented in docs/estimating.md);
    `attention_kernel` as in `profiler.predict.ops.ATTENTION_KERNELS`."""
    if estimate not in ESTIMATES:
        raise ValueError(f"estimate={estimate!r} must be one of {list(ESTIMATES)}")
    if workload.device != profile.device_type:
        raise ValueError(f"workload device={workload.device!r} does not match profile {profile.name!r}'s device_type="
                         f"{profile.device_type!r}: the step's kernels (optimizer, dropout) are the device's")
    ops = model_ops(arch, workload, attention_kernel)
    times = [op_time(op, profile, workload.matmul_dtype, estimate) for op in ops]
    host = profile.host_overhead_s(arch.name, workload.mode, workload.batch, estimate)
    if host is not None:
        times = [replace(t, overhead_s=0.0) for t in times] + host_overhead_rows(ops, host)
    seconds = sum(t.seconds for t in times)
    # MFU counts the model's FLOPs (flops.py: causal attention), not the extra pairs a math kernel computes.
    flops = matmul_flops(ops if attention_kernel == "fused" else model_ops(arch, workload))
    tokens = workload.tokens
    by_phase = {phase: sum(t.seconds for t in times if t.op.phase == phase) for phase in PHASES}
    return {
        "model": arch.name, "hardware": profile.name, "device_type": profile.device_type,
        "workload": asdict(workload), "estimate": estimate, "attention_kernel": attention_kernel,
        "seconds": seconds, "tokens_per_s": tokens / seconds,
        "matmul_flops": flops, "mfu": flops / (seconds * profile.peak(workload.matmul_dtype)),
        "bound": dominant_bound(times),
        "seconds_by_phase": by_phase,
        "seconds_by_bound": {bound: sum(t.seconds for t in times if t.bound == bound) for bound in BOUNDS},
        "launches": sum(op.launches for op in ops),
        "bytes": sum(op.bytes for op in ops),
        "ops": [op_row(t) for t in times],
    }


def op_row(t: OpTime) -> dict[str, Any]:
    op = t.op
    return {"name": op.name, "phase": op.phase, "kind": op.kind, "repeats": op.repeats,
            "mnk": list(op.mnk) if op.mnk else None, "flops": op.flops, "bytes": op.bytes, "launches": op.launches,
            "compute_s": t.compute_s, "memory_s": t.memory_s, "overhead_s": t.overhead_s, "seconds": t.seconds,
            "bound": t.bound}
