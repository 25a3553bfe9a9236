"""Predicted against measured time over a grid of (model, mode, batch, seq_len) points on this machine, with the
device calibrated in the same run (`python -m profiler compare`).

Modes (`COMPARED_MODES`): `forward` and `train` at B×S; `prefill` of P = S prompt tokens (generation's first
forward, logits of the last position only) and `decode`, one token per sequence after a context of C = S tokens.
Prefill and decode are timed with one greedy `generate` of n + 1 new tokens from a prompt of S tokens (n =
`DECODE_TOKENS` unless told) and the prefill-only call (`generate` of one token): prefill = the latter, decode per
token = (generate − prefill) ÷ n, the statistic taken of each call's repeats; its n steps attend caches of C ..
C + n − 1 tokens, so the prediction is the mean of the decode predictions at those contexts (`point_workloads`).

Steps: (1) calibrate the device (`profiler.measuring.calibration.calibrate`, as `python -m profiler calibrate`;
then `profiler.measuring.model_shapes` adds the grid's own product shapes, the attention kernel and bandwidth by
working-set size, and `profiler.measuring.host_overhead` each zoo model's host time per mode and batch, measured on
its null-width twin); (2) measure every grid point with the `measure` harness; (3) predict it with
`profiler.predict.roofline` from the analytic op list; (4) report the signed error (predicted − measured) ÷
measured per point and its summary. Forward, train and decode points also compare the measured peak of live
tensor bytes with the predicted one (`predicted_peak`: the training timeline's largest phase, the no-grad
forward's peak, or for decode the peak of the `generate` call its time comes from), and what the call added on top
of what was live when it began; prefill rows have none (their call is the same `generate` of one token the decode
row subtracts, not tracked on its own).

Clock: `wall` times elapsed seconds; `cpu` (CPU device) the process's CPU seconds, which with one thread is the
time the work itself took even when other processes share the cores (they lengthen elapsed time but not our CPU
time). Calibration and measurement always use the same clock. `auto` is cpu on the CPU device when torch runs one
thread, wall otherwise. Threads are torch's at the time of the call: the command sets them (default 1 on CPU).

Timing statistic: `min` (default) compares the fastest of the repeats with the prediction at the fastest end of
the calibrated spreads (`optimistic`); `p50` compares medians with `likely`. On a machine shared with other
processes the minimum is the reproducible figure: interference only ever adds time.

Nothing here writes files or draws: the command renders and saves what `calibrated_comparison` returns.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from typing import Any

from profiler.checks.errors import abs_error_summary
from profiler.formulas.memory import model_state_bytes, predicted_peak_bytes, training_state_bytes
from profiler.hardware import HardwareProfile
from profiler.predict.roofline import predict
from profiler.source import ModelSource
from profiler.workload import COMPARED_MODES, DECODE_TOKENS, Workload, point_workloads

log = logging.getLogger(__name__)

DEFAULT_SIZES, DEFAULT_BATCHES, DEFAULT_SEQ_LENS = ("tiny", "20m", "small"), (1, 4), (128, 512)
GENERATION_MODES = ("prefill", "decode")  # timed within one `generate` call (module docstring)
STATISTICS = {"min": ("min_s", "optimistic"), "p50": ("p50_s", "likely")}
CLOCKS = ("wall", "cpu")
# One grid point: the model, the mode (COMPARED_MODES), batch and sequence length (decode: the context).
Point = tuple[ModelSource, str, int, int]
# Measure function: (point) -> {"min_s", "p50_s"} and, for forward and train, {"peak_bytes", "start_bytes"}.
MeasureFn = Callable[[ModelSource, str, int, int], dict[str, Any]]


def grid(sources: list[ModelSource], batches: list[int], seq_lens: list[int], modes: list[str]) -> list[Point]:
    """Every (model, mode, batch, seq_len), models outermost so each model is built once."""
    bad = [mode for mode in modes if mode not in COMPARED_MODES]
    if bad:
        raise ValueError(f"modes={','.join(modes)!r}: each must be one of {list(COMPARED_MODES)}")
    return [(source, mode, batch, seq) for source in sources for mode in modes for batch in batches
            for seq in seq_lens]


def positions_needed(modes: list[str], seq_len: int, new_tokens: int = DECODE_TOKENS) -> int:
    """Positions the longest call of the grid runs through: S, or S + n + 1 when it generates (the prompt plus
    the n + 1 tokens asked of `generate`)."""
    return seq_len + (new_tokens + 1 if any(mode in GENERATION_MODES for mode in modes) else 0)


def predict_point(source: ModelSource, profile: HardwareProfile, mode: str, batch: int, seq_len: int, dtype: str,
                  estimate: str, new_tokens: int = DECODE_TOKENS) -> dict[str, Any]:
    """The prediction of one point: `predict` of its workload, or for decode the mean over `point_workloads`
    of seconds, MFU and seconds per phase, with the bound of the middle context."""
    results = [predict(source.arch, profile, workload, estimate)
               for workload in point_workloads(mode, batch, seq_len, dtype, new_tokens,
                                               profile.device_type)]
    if len(results) == 1:
        return results[0]
    return {"seconds": statistics.fmean(r["seconds"] for r in results),
            "mfu": statistics.fmean(r["mfu"] for r in results),
            "bound": results[len(results) // 2]["bound"],
            "seconds_by_phase": {phase: statistics.fmean(r["seconds_by_phase"][phase] for r in results)
                                 for phase in results[0]["seconds_by_phase"]}}


def generation_timing(mode: str, generate: dict[str, float], prefill: dict[str, float],
                      new_tokens: int) -> dict[str, float]:
    """Measured seconds of a prefill or decode point from the timings (`min_s`, `p50_s`) of `generate` with
    new_tokens + 1 tokens and of the prefill-only call: prefill as it is; decode per token = (generate −
    prefill) ÷ new_tokens under each statistic. Raises when that difference is not positive (noise larger than
    the decoding: time more tokens or repeats)."""
    if mode not in GENERATION_MODES:
        raise ValueError(f"mode={mode!r} must be one of {list(GENERATION_MODES)}")
    keys = [key for key, _ in STATISTICS.values()]
    if mode == "prefill":
        return {key: prefill[key] for key in keys}
    from profiler.measuring.harness import decode_step_timing

    return decode_step_timing(generate, prefill, new_tokens, tuple(keys))


def prediction_error(predicted: float, measured: float) -> float:
    """(predicted − measured) ÷ measured: signed, positive when the prediction is too slow."""
    if measured <= 0:
        raise ValueError(f"measured={measured!r} must be > 0")
    return (predicted - measured) / measured


def predicted_peak(source: ModelSource, mode: str, batch: int, seq_len: int, dtype: str,
                   device: str, new_tokens: int = DECODE_TOKENS) -> tuple[int, int]:
    """Predicted peak bytes of live tensors of one measured call, and those live when it starts. Training: the
    largest phase of `training_timeline`, starting from `training_state_bytes` with the previous step's gradients
    (the harness has run a step before; `zero_grad(set_to_none=True)` frees them inside the call); both with
    their default optimizer. Forward: `forward_peak_bytes`; decode: the `generate` call its time comes from (a
    prompt of `seq_len`, new_tokens + 1 tokens), the largest phase of `generate_timeline`; both starting from
    `model_state_bytes` (the weights and a cached RoPE table)."""
    if mode == "decode":
        peak = predicted_peak_bytes(source.arch, "generate", batch, seq_len, dtype, device, new_tokens=new_tokens + 1)
    else:
        peak = predicted_peak_bytes(source.arch, mode, batch, seq_len, dtype, device)
    if mode == "train":
        return peak, training_state_bytes(source.arch, dtype, gradients=True)
    return peak, model_state_bytes(source.arch, dtype)


def compare_points(points: list[Point], profile: HardwareProfile, measure_fn: MeasureFn,
                   dtype: str = "float32", statistic: str = "min", memory_device: str = "cpu",
                   new_tokens: int = DECODE_TOKENS) -> list[dict[str, Any]]:
    """One row per grid point: measured and predicted seconds (decode: per token, `predict_point`) and their error
    under `statistic`, the same under every statistic (`by_statistic`), bound, MFU, and when the measurement has
    one the measured peak memory against `predicted_peak` (on the allocator of `memory_device`)."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic={statistic!r} must be one of {list(STATISTICS)}")
    rows = []
    for source, mode, batch, seq_len in points:
        measured = measure_fn(source, mode, batch, seq_len)
        results = {name: predict_point(source, profile, mode, batch, seq_len, dtype, estimate, new_tokens)
                   for name, (_, estimate) in STATISTICS.items()}
        by_statistic = {name: {"measured_s": measured[key], "predicted_s": results[name]["seconds"],
                               "error": prediction_error(results[name]["seconds"], measured[key])}
                        for name, (key, _) in STATISTICS.items()}
        result = results[statistic]
        row = {"model": source.name, "mode": mode, "batch": batch, "seq_len": seq_len, **by_statistic[statistic],
               "by_statistic": by_statistic, "bound": result["bound"], "mfu": result["mfu"],
               "seconds_by_phase": result["seconds_by_phase"]}
        if measured.get("peak_bytes"):
            predicted, start = predicted_peak(source, mode, batch, seq_len, dtype, memory_device, new_tokens)
            added = measured["peak_bytes"] - measured["start_bytes"]
            row["memory"] = {"measured_peak_bytes": measured["peak_bytes"], "predicted_peak_bytes": predicted,
                             "measured_phase_peak_bytes": measured.get("phase_peak_bytes", {}),
                             "error": prediction_error(predicted, measured["peak_bytes"]),
                             "measured_added_bytes": added, "predicted_added_bytes": predicted - start,
                             "added_error": prediction_error(predicted - start, added)}
        rows.append(row)
        log.info("%s %s B=%d S=%d: measured %.4g s, predicted %.4g s (%+.1f%%)", source.name, mode, batch, seq_len,
                 row["measured_s"], row["predicted_s"], 100 * row["error"])
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, float | int | None]:
    """Median and largest |error| over the rows (`abs_error_summary`), under the chosen statistic and each one
    (`min_...`, `p50_...`), and for memory (`memory_...`)."""
    out = {"points": len(rows), **abs_error_summary([r["error"] for r in rows])}
    for name in STATISTICS:
        chosen = [r["by_statistic"][name]["error"] for r in rows if "by_statistic" in r]
        if chosen:
            out.update(abs_error_summary(chosen, prefix=f"{name}_"))
    memory = [r["memory"]["error"] for r in rows if "memory" in r]
    if memory:
        out.update(abs_error_summary(memory, prefix="memory_"))
    return out


def calibrated_comparison(points: list[Point], device_name: str = "cpu", clock: str = "auto", repeats: int = 5,
                          warmup: int = 2, statistic: str = "min", progress: bool = True,
                          new_tokens: int = DECODE_TOKENS) -> tuple[dict[str, Any], HardwareProfile]:
    """Calibrate the device for `points`, measure and predict each; returns the report (hardware, statistic,
    new_tokens, environment, summary, rows) and the calibrated profile (see the module docstring for the clock).
    A decode point is calibrated at its middle context (its other contexts' shapes differ only in keys)."""
    import torch

    from profiler.measuring import host_overhead, model_shapes
    from profiler.measuring.calibration import calibrate
    from profiler.measuring.device import timing_device

    if statistic not in STATISTICS:
        raise ValueError(f"statistic={statistic!r} must be one of {list(STATISTICS)}")
    if clock not in ("auto",) + CLOCKS:
        raise ValueError(f"clock={clock!r} must be one of {['auto', *CLOCKS]}")
    device, clock = timing_device(device_name, clock)
    workloads = [(source.arch, Workload(mode, b, s + (new_tokens // 2 if mode == "decode" else 0)))
                 for source, mode, b, s in points]
    dtypes = tuple(sorted({w.dtype for _, w in workloads}))
    profile = calibrate(device, name="compare_calibrated", progress=progress, only_dtypes=dtypes)
    profile = model_shapes.calibrate_for_workloads(profile, workloads, device, repeats, progress=progress)
    profile = host_overhead.calibrate_host_overheads(profile, [(source, Workload(mode, b, s)) for source, mode, b, s
                                                               in points], device, warmup, repeats, new_tokens)
    rows = compare_points(points, profile, harness_measure_fn(device, warmup, repeats, new_tokens),
                          statistic=statistic, memory_device=device.type, new_tokens=new_tokens)
    environment = {"device": device.describe(), "threads": torch.get_num_threads(), "clock": clock,
                   "torch": torch.__version__}
    report = {"hardware": profile.name, "statistic": statistic, "new_tokens": new_tokens, "environment": environment,
              "summary": summary(rows), "rows": rows}
    return report, profile


def harness_measure_fn(device: Any, warmup: int, repeats: int, new_tokens: int = DECODE_TOKENS) -> MeasureFn:
    """The `measure` harness as a `MeasureFn` (one module built per model and reused for its points; one
    `generate` measurement per model, batch and prompt serves both its prefill and decode points)."""
    from profiler.measuring import harness

    built: dict[str, Any] = {}
    generated: dict[tuple[int, int], dict[str, Any]] = {}

    def measure(source: ModelSource, mode: str, batch: int, seq_len: int) -> dict[str, Any]:
        if source.name not in built:
            built.clear()
            generated.clear()
            built[source.name] = harness.load_model(source, device, "float32")
        if mode != "train":  # start from the loaded model: free the gradients a training point left behind
            built[source.name].zero_grad(set_to_none=True)
        if mode in GENERATION_MODES:
            if (batch, seq_len) not in generated:
                generated[(batch, seq_len)] = harness.measure_batch(
                    built[source.name], source, "generate", device, batch, seq_len, new_tokens + 1, warmup, repeats,
                    None)
            result = generated[(batch, seq_len)]
            timing = generation_timing(mode, result["timing"], result["prefill"], new_tokens)
            return timing if mode == "prefill" else {**timing, **peak_fields(result["memory"])}
        result = harness.measure_batch(built[source.name], source, mode, device, batch, seq_len, 0, warmup,
                                       repeats, None)
        return {**result["timing"], **peak_fields(result["memory"])}

    return measure


def peak_fields(memory: dict[str, Any]) -> dict[str, Any]:
    """The memory fields of a `MeasureFn` result from the harness's memory stats."""
    return {"peak_bytes": memory["peak_bytes"], "start_bytes": memory["start_bytes"],
            "phase_peak_bytes": memory["phase_peak_bytes"]}


def largest_training_point(points: list[Point]) -> Point:
    """The point whose roofline is drawn: the largest training workload (else the largest one), the last on ties."""
    return max(enumerate(points), key=lambda item: (item[1][1] == "train", item[1][2] * item[1][3], item[0]))[1]
