"""Plots of compare's results, drawn with matplotlib's object API (no pyplot: no global figure state or backend
change) and saved as PNG. matplotlib is imported when a plot is drawn, so that registering the commands stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from profiler.hardware import HardwareProfile
from profiler.predict.ops import model_ops
from profiler.predict.roofline import op_time
from profiler.source import ModelSource
from profiler.workload import Workload


def plot_scatter(rows: list[dict[str, Any]], path: Path) -> None:
    """Predicted against measured seconds, log-log, one marker per mode, with the y = x line and ±25 % band."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    for mode, marker in (("forward", "o"), ("train", "s"), ("prefill", "D"), ("decode", "^")):
        chosen = [r for r in rows if r["mode"] == mode]
        if chosen:
            ax.scatter([r["measured_s"] for r in chosen], [r["predicted_s"] for r in chosen], marker=marker,
                       label=mode)
    values = [v for r in rows for v in (r["measured_s"], r["predicted_s"])]
    low, high = min(values) / 1.5, max(values) * 1.5
    ax.plot([low, high], [low, high], "k-", lw=1, label="y = x")
    ax.fill_between([low, high], [low * 0.75, high * 0.75], [low * 1.25, high * 1.25], color="grey", alpha=0.15,
                    label="±25 %")
    ax.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high), xlabel="measured (s)",
           ylabel="predicted (s)", title="Predicted vs measured step time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_roofline(source: ModelSource, workload: Workload, profile: HardwareProfile, estimate: str,
                  path: Path) -> None:
    """Each op of one workload at (FLOPs ÷ bytes, FLOPs ÷ predicted seconds) under the device's ceilings: the
    fastest calibrated matmul rate and the fastest calibrated bandwidth (a line of slope 1)."""
    times = [op_time(op, profile, workload.matmul_dtype, estimate) for op in model_ops(source.arch, workload)]
    peak = max(p.flops_per_s.pick(estimate) for p in profile.efficiency.matmul if p.dtype == workload.dtype)
    table = profile.efficiency.elementwise_by_size
    bandwidth = max((p.bytes_per_s.pick(estimate) for p in table), default=profile.elementwise_bytes_per_s(estimate))
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    intensities = [t.op.flops / t.op.bytes for t in times if t.op.flops and t.op.bytes]
    x = [min(intensities) / 2, max(intensities) * 2]
    ridge = min(max(peak / bandwidth, x[0]), x[1])  # where the bandwidth slope meets the compute ceiling
    ax.plot([x[0], ridge, x[1]], [min(peak, bandwidth * x[0]), min(peak, bandwidth * ridge), peak], "k-", lw=1.5,
            label="roofline")
    for kind, marker in (("matmul", "o"), ("attention", "D"), ("memory", "x")):
        chosen = [t for t in times if t.op.kind == kind and t.op.flops and t.op.bytes]
        ax.scatter([t.op.flops / t.op.bytes for t in chosen], [t.op.flops / t.seconds for t in chosen],
                   marker=marker, label=kind)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="FLOP/s (predicted)",
           title=f"{source.name} {workload.mode} B={workload.batch} S={workload.seq_len} on {profile.name}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# The measured phases of a step (the CPU tracker's) and the timeline phases they span. The measured forward phase
# begins with the call, while the previous step's gradients are still alive (zero_grad frees them).
MEASURED_SPANS = {"forward": ("between_steps", "loss", "forward_end"), "backward": ("backward_start", "backward_end"),
                  "optimizer": ("optimizer_step",)}


def plot_memory_timeline(timeline: dict[str, int], measured: dict[str, int], title: str, path: Path) -> None:
    """The predicted live bytes at each phase of a training step as bars, and each measured phase's peak as a line
    across the bars of that phase (`MEASURED_SPANS`)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    phases = list(timeline)
    ax.bar(phases, [timeline[p] / 2**20 for p in phases], color="tab:blue", label="predicted")
    for i, (phase, peak) in enumerate(measured.items()):
        spanned = [phases.index(p) for p in MEASURED_SPANS.get(phase, ()) if p in phases]
        if spanned:
            ax.hlines(peak / 2**20, min(spanned) - 0.45, max(spanned) + 0.45, color="tab:red", lw=2,
                      label="measured peak of the phase" if i == 0 else None)
    ax.set(ylabel="live tensors (MiB)", title=title)
    ax.tick_params(axis="x", labelrotation=20)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_fit(curves: dict[str, list[int]], batches: list[int], budget: int, title: str, path: Path) -> None:
    """Each training phase's predicted bytes against the micro-batch, with the memory budget as a line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    for phase, values in curves.items():
        ax.plot(batches, [v / 2**30 for v in values], marker="o", ms=3, label=phase)
    ax.axhline(budget / 2**30, color="k", lw=1.5, ls="--", label=f"budget {budget / 2**30:,.1f} GiB")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="micro-batch (sequences)", ylabel="live tensors (GiB)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
