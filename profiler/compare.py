"""`python -m profiler compare`: predicted against measured time over a grid of (size, batch, seq, mode) on this
machine, with the calibration done in the same run.

Steps: (1) calibrate the device (`profiler.timing.calibration.calibrate`, as `python -m profiler calibrate`; then
`profiler.timing.model_shapes` adds the grid's own product shapes, the attention kernel and bandwidth by
working-set size); (2) measure every
grid point with the `measure` harness; (3) predict it with `profiler.predict` from the analytic op list; (4) report
the relative error (predicted − measured) ÷ measured, a table, JSON, and two PNG plots: predicted against
measured with the y = x line, and a roofline with one workload's ops placed on it. Training points also compare
the measured peak of live tensor bytes with `profiler.formulas.memory` (weights + gradients + AdamW state +
`implementation_activation_bytes`), and what the step added on top of the live state it started from with
activations + gradients.

Clock: `--clock wall` times elapsed seconds; `--clock cpu` (CPU device) the process's CPU seconds, which with
`--threads 1` is the time the work itself took even when other processes share the cores (they lengthen elapsed
time but not our CPU time). Calibration and measurement always use the same clock. The defaults suit a shared
CPU — `--clock auto` is cpu on the CPU device with one thread, wall otherwise, and `--threads` defaults to 1 on
the CPU device; on a dedicated machine pass `--threads N --clock wall`.

Timing statistic: `--statistic min` (default) compares the fastest of the repeats with the prediction at the
fastest end of the calibrated spreads (`optimistic`); `p50` compares medians with `likely`. On a machine shared
with other processes the minimum is the reproducible figure: interference only ever adds time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from profiler.arch import load_arch
from profiler.formulas import memory as M
from profiler.formulas.params import count_params
from profiler.hardware import HardwareProfile, save_profile
from profiler.ops import Workload, model_ops
from profiler.predict import op_time, predict

log = logging.getLogger(__name__)

DEFAULT_SIZES, DEFAULT_BATCHES, DEFAULT_SEQ_LENS, DEFAULT_MODES = ("tiny", "20m", "small"), (1, 4), (128, 512), \
    ("forward", "train")
STATISTICS = {"min": ("min_s", "optimistic"), "p50": ("p50_s", "likely")}
FORMATS = ("table", "json")
CLOCKS = ("wall", "cpu")
# Measure function: (model, mode, batch, seq_len) -> {"min_s", "p50_s", "peak_bytes", "start_bytes"}.
MeasureFn = Callable[[str, str, int, int], dict[str, Any]]


def grid(sizes: list[str], batches: list[int], seq_lens: list[int],
         modes: list[str]) -> list[tuple[str, str, int, int]]:
    """Every (size, mode, batch, seq_len), sizes outermost so each model is built once."""
    return [(size, mode, batch, seq) for size in sizes for mode in modes for batch in batches for seq in seq_lens]


def relative_error(predicted: float, measured: float) -> float:
    """(predicted − measured) ÷ measured."""
    if measured <= 0:
        raise ValueError(f"measured={measured!r} must be > 0 seconds")
    return (predicted - measured) / measured


def train_memory_prediction(model: str, batch: int, seq_len: int, dtype: str) -> dict[str, int]:
    """Analytic bytes of a float training step: weights, gradients, AdamW moments, activations."""
    arch = load_arch(model)
    params = count_params(arch).total
    parts = {"weights": M.weight_bytes(params, dtype), "gradients": M.gradient_bytes(params, dtype),
             "optimizer": M.optimizer_bytes(params, "adamw", dtype),
             "activations": M.implementation_activation_bytes(arch, batch, seq_len, dtype)}
    return {**parts, "total": sum(parts.values())}


def compare_points(points: list[tuple[str, str, int, int]], profile: HardwareProfile, measure_fn: MeasureFn,
                   dtype: str = "float32", statistic: str = "min") -> list[dict[str, Any]]:
    """One row per grid point: measured and predicted seconds and relative error under `statistic`, the same under
    every statistic (`by_statistic`), bound, MFU, and for training the measured peak against the analytic memory."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic={statistic!r} must be one of {list(STATISTICS)}")
    rows = []
    for model, mode, batch, seq_len in points:
        measured = measure_fn(model, mode, batch, seq_len)
        workload = Workload(mode, batch, seq_len, dtype)
        results = {name: predict(load_arch(model), profile, workload, estimate)
                   for name, (_, estimate) in STATISTICS.items()}
        by_statistic = {name: {"measured_s": measured[key], "predicted_s": results[name]["seconds"],
                               "error": relative_error(results[name]["seconds"], measured[key])}
                        for name, (key, _) in STATISTICS.items()}
        result = results[statistic]
        row = {"model": model, "mode": mode, "batch": batch, "seq_len": seq_len, **by_statistic[statistic],
               "by_statistic": by_statistic, "bound": result["bound"], "mfu": result["mfu"],
               "seconds_by_phase": result["seconds_by_phase"]}
        if mode == "train" and measured.get("peak_bytes"):
            analytic = train_memory_prediction(model, batch, seq_len, dtype)
            added = measured["peak_bytes"] - measured["start_bytes"]
            row["memory"] = {"measured_peak_bytes": measured["peak_bytes"], "predicted_peak_bytes": analytic["total"],
                             "error": relative_error(analytic["total"], measured["peak_bytes"]),
                             "measured_added_bytes": added,
                             "predicted_added_bytes": analytic["activations"] + analytic["gradients"],
                             "added_error": relative_error(analytic["activations"] + analytic["gradients"], added)}
        rows.append(row)
        log.info("%s %s B=%d S=%d: measured %.4g s, predicted %.4g s (%+.1f%%)", model, mode, batch, seq_len,
                 row["measured_s"], row["predicted_s"], 100 * row["error"])
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    errors = [abs(r["error"]) for r in rows]
    memory = [abs(r["memory"]["error"]) for r in rows if "memory" in r]
    out = {"points": len(rows), "median_abs_error": statistics.median(errors), "max_abs_error": max(errors)}
    for name in STATISTICS:
        chosen = [abs(r["by_statistic"][name]["error"]) for r in rows if "by_statistic" in r]
        if chosen:
            out[f"{name}_median_abs_error"], out[f"{name}_max_abs_error"] = statistics.median(chosen), max(chosen)
    if memory:
        out.update(memory_median_abs_error=statistics.median(memory), memory_max_abs_error=max(memory))
    return out


# ---------------------------------------------------------------------------------------------------- plots
def plot_scatter(rows: list[dict[str, Any]], path: Path) -> None:
    """Predicted against measured seconds, log-log, one marker per mode, with the y = x line and ±25 % band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    for mode, marker in (("forward", "o"), ("train", "s"), ("decode", "^")):
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
    plt.close(fig)


def plot_roofline(model: str, workload: Workload, profile: HardwareProfile, estimate: str, path: Path) -> None:
    """Each op of one workload at (FLOPs ÷ bytes, FLOPs ÷ predicted seconds) under the device's ceilings: the
    fastest calibrated matmul rate and the fastest calibrated bandwidth (a line of slope 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [op_time(op, profile, workload.dtype, estimate) for op in model_ops(load_arch(model), workload)]
    peak = max(p.flops_per_s.pick(estimate) for p in profile.efficiency.matmul if p.dtype == workload.dtype)
    table = profile.efficiency.elementwise_by_size
    bandwidth = max((p.bytes_per_s.pick(estimate) for p in table), default=profile.elementwise_bytes_per_s(estimate))
    fig, ax = plt.subplots(figsize=(7, 5))
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
           title=f"{model} {workload.mode} B={workload.batch} S={workload.seq_len} on {profile.name}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------- CLI
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="predicted vs measured time over a grid, calibrated in the run",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(DEFAULT_SIZES), help="comma-separated zoo sizes or config paths")
    parser.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)))
    parser.add_argument("--seq-lens", default=",".join(map(str, DEFAULT_SEQ_LENS)))
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES), help="forward and/or train")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: 1 on the CPU device, else "
                                                    "torch's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per point and per shape (default 5)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--statistic", default="min", choices=list(STATISTICS))
    parser.add_argument("--clock", default="auto", choices=("auto",) + CLOCKS,
                        help="auto: cpu on the CPU device with one thread, else wall; "
                             "wall: elapsed time; cpu: CPU time of this process (CPU device only; with --threads 1 "
                             "the time the work took, without the time other processes held the cores)")
    parser.add_argument("--out", default="compare_out", help="directory for the JSON, plots and calibrated profile")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError as err:
        raise ValueError(f"{name}={text!r} must be comma-separated integers >= 1") from err
    if not values or min(values) < 1:
        raise ValueError(f"{name}={text!r} must be comma-separated integers >= 1")
    return values


def run(args: argparse.Namespace) -> int:
    sizes, modes = args.sizes.split(","), args.modes.split(",")
    bad = [m for m in modes if m not in ("forward", "train")]
    if bad:
        raise ValueError(f"modes={args.modes!r}: each must be forward or train")
    points = grid(sizes, _ints(args.batches, "batches"), _ints(args.seq_lens, "seq_lens"), modes)
    report = calibrated_comparison(points, Path(args.out), args.device, args.threads, args.clock, args.repeats,
                                   args.warmup, args.statistic)
    print(json.dumps(report, indent=2) if args.format == "json" else render_table(report))
    return 0


def calibrated_comparison(points: list[tuple[str, str, int, int]], out: Path, device_name: str = "cpu",
                          threads: int | None = None, clock: str = "auto", repeats: int = 5, warmup: int = 2,
                          statistic: str = "min") -> dict[str, Any]:
    """Calibrate the device for `points` (model, mode, batch, seq_len), measure and predict each, and write the
    JSON, plots and calibrated profile into `out`; returns the report (see the module docstring for the clock and
    thread defaults)."""
    import torch

    from profiler.timing import model_shapes
    from profiler.timing.calibration import calibrate
    from profiler.timing.device import get_device

    if statistic not in STATISTICS:
        raise ValueError(f"statistic={statistic!r} must be one of {list(STATISTICS)}")
    device = get_device(device_name)
    threads = threads if threads is not None else (1 if device.type == "cpu" else None)
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads={threads!r} must be an integer >= 1")
        torch.set_num_threads(threads)
    clock = clock if clock != "auto" else ("cpu" if device.type == "cpu" and threads == 1 else "wall")
    if clock == "cpu":
        if device.type != "cpu":
            raise ValueError(f"clock='cpu' needs device='cpu', got device={device_name!r}")
        device = dataclasses.replace(device, clock=time.process_time)
    workloads = [(load_arch(m), Workload(mode, b, s)) for m, mode, b, s in points]
    profile = calibrate(device, name="compare_calibrated", progress=True)
    profile = model_shapes.calibrate_for_workloads(profile, workloads, device, repeats, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    save_profile(profile, out / "calibrated_profile.json")
    rows = compare_points(points, profile, harness_measure_fn(device, warmup, repeats))
    environment = {"device": device.describe(), "threads": torch.get_num_threads(), "clock": clock,
                   "torch": torch.__version__}
    return write_outputs(rows, profile, points, out, statistic, environment)


def harness_measure_fn(device: Any, warmup: int, repeats: int) -> MeasureFn:
    """The `measure` harness as a `MeasureFn` (one model built per size and reused)."""
    from profiler.timing import harness

    models: dict[str, Any] = {}

    def measure(model: str, mode: str, batch: int, seq_len: int) -> dict[str, Any]:
        if model not in models:
            models.clear()
            models[model] = harness.load_model(model, device, "float32")
        module, arch = models[model]
        result = harness.measure_batch(module, mode, device, batch, seq_len, arch.vocab_size, 0, warmup, repeats,
                                       None)
        return {**result["timing"], "peak_bytes": result["memory"]["peak_bytes"],
                "start_bytes": result["memory"]["start_bytes"]}

    return measure


def write_outputs(rows: list[dict[str, Any]], profile: HardwareProfile, points: list, out: Path,
                  statistic: str, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    """compare.json, predicted_vs_measured.png and roofline.png (of the largest training point) in `out`."""
    report = {"hardware": profile.name, "statistic": statistic, "environment": environment or {},
              "summary": summary(rows), "rows": rows,
              "files": {"json": str(out / "compare.json"), "scatter": str(out / "predicted_vs_measured.png"),
                        "roofline": str(out / "roofline.png"), "profile": str(out / "calibrated_profile.json")}}
    (out / "compare.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_scatter(rows, out / "predicted_vs_measured.png")
    model, mode, batch, seq = max(points, key=lambda p: (p[1] == "train", p[2] * p[3], points.index(p)))
    plot_roofline(model, Workload(mode, batch, seq), profile, STATISTICS[statistic][1], out / "roofline.png")
    return report


def render_table(report: dict[str, Any]) -> str:
    lines = [f"{'model':<8} {'mode':<8} {'B':>3} {'S':>5} {'measured ms':>12} {'predicted ms':>13} {'error':>8} "
             f"{'bound':<8} {'MFU':>6} {'mem err':>8}"]
    for r in report["rows"]:
        memory = f"{r['memory']['error']:+.1%}" if "memory" in r else "-"
        lines.append(f"{r['model']:<8} {r['mode']:<8} {r['batch']:>3} {r['seq_len']:>5} {r['measured_s'] * 1e3:>12.2f} "
                     f"{r['predicted_s'] * 1e3:>13.2f} {r['error']:>+8.1%} {r['bound']:<8} {r['mfu']:>6.1%} "
                     f"{memory:>8}")
    s = report["summary"]
    lines.append(f"\n{s['points']} points ({report['statistic']}): median |error| {s['median_abs_error']:.1%}, "
                 f"max {s['max_abs_error']:.1%}")
    other = [name for name in STATISTICS if name != report["statistic"] and f"{name}_median_abs_error" in s]
    for name in other:
        lines.append(f"({name}: median |error| {s[f'{name}_median_abs_error']:.1%}, "
                     f"max {s[f'{name}_max_abs_error']:.1%})")
    if "memory_median_abs_error" in s:
        lines.append(f"train peak memory: median |error| {s['memory_median_abs_error']:.1%}, "
                     f"max {s['memory_max_abs_error']:.1%}")
    lines.append("files: " + ", ".join(report["files"].values()))
    return "\n".join(lines)
