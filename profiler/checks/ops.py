"""Predicted against measured time per op category of one step (`python -m profiler ops MODEL`).

The predictor's ops (`profiler.predict.ops`, priced by `profiler.predict.roofline`) and the aten ops that
`torch.profiler` sees in the real step (`profiler.measuring.op_profile`) are named differently, so both are mapped
into the same categories (`CATEGORIES`) by two registries:

* `PREDICTED_RULES`: a predicted op's name (its `.backward` / `.grad_input` / `.grad_weight` suffix removed) and
  kind -> category. There is no catch-all: an op no rule names is an error, so no predicted op is dropped.
* `MEASURED_RULES`: a profiled event's name -> category, or None for names that say nothing by themselves (views,
  autograd-engine and `*Backward0` wrappers). An event belongs to the category of the outermost event on its call
  path that has one — the pow/mean/rsqrt inside the zoo's `_RMSNormFunction` are "norm", everything inside
  `Optimizer.step` (and `Optimizer.zero_grad`) is "optimizer", the `aten::t` inside `aten::linear` is "matmul" —
  and to "framework" when no event on its path has one (bare views, autograd bookkeeping: time the predictor
  carries only as per-launch overhead).

Measured time of a category = the self time of its events per step (CPU: host self time; CUDA: kernel time), so
the categories add up to the profiled total. A measured host overhead on the predicted side (the null-workload
time that replaces per-launch overhead, `profiler.predict.roofline`) is spread over the categories in proportion
to their launches: the profiler counts each op's dispatch in that op's self time. The Python time between ops
(module calls) is in it too but in no profiled event, so the categories' sum may exceed the profiled ops. The lm
head's product is a matmul like any other (aten names do not say which product it is); its element-wise ops (scaling, soft-cap) are "elementwise". The autograd engine sums
gradients that meet at one tensor inside the node that produced the second one, so the tied head's gradient sum
counts as "embedding" and the residual stream's gradient sums land in whichever category's backward ran before
them (the predictor lists those as "elementwise").

Error = (predicted − measured) ÷ measured, measured under the profiler, which slows every op: the totals show the
profiled step beside the same step timed without it (`overhead` = profiled ÷ unprofiled − 1).
"""

from __future__ import annotations

import re
from typing import Any

from complexity.inputs import require_int
from profiler.hardware import HardwareProfile
from profiler.predict.roofline import HOST_OVERHEAD, predict
from profiler.source import ModelSource
from profiler.workload import DECODE_TOKENS, point_workloads

CATEGORIES = ("matmul", "attention", "norm", "elementwise", "embedding", "dispatch", "loss", "optimizer", "copy",
              "framework")
MODES = ("forward", "train", "prefill", "decode")
PROFILED_DEVICES = ("cpu", "cuda")  # where torch.profiler times each op (CPU: host self time; CUDA: kernels)
CLOCKS = ("auto", "wall", "cpu")  # auto: cpu on the CPU device with one torch thread, else wall

# (name pattern, kind or None for any kind, category): the first rule that matches wins.
PREDICTED_RULES: tuple[tuple[str, str | None, str], ...] = (
    (r"^optimizer\.adamw(_foreach|_fused)?\[\d+\]$", None, "optimizer"),
    (r"^host_overhead$", "host", "framework"),  # a measured host time: spread by launches (`_host_shares`)
    (r"^loss\.(log_softmax|nll|nll_grad_table)$", None, "loss"),
    (r"^attention\.(sdpa|scores|values|mask_softmax|softcap)$", None, "attention"),
    (r"^(norm\.\w+|attention\.qk_norm)$", None, "norm"),
    (r"^(embedding|position_embedding|embedding\.grad_table)$", None, "embedding"),
    (r"^mlp\.dispatch$", None, "dispatch"),
    (r"", "matmul", "matmul"),  # every projection, expert slice, router and the lm head
    (r"^lm_head\.tied_grad_sum$", None, "embedding"),  # the engine adds the tied table's two gradients there
    (r"^(residual\.(add|scale|grad_sum|dropout)|(embedding|attention)\.dropout|attention\.(rope|kv_cache_append)"
     r"|embedding\.scale|routing"
     r"|mlp\.\w*act(_mul)?|mlp\.router_topk|mlp\.shared_expert_gate_mul|mlp\.expert_grad_stack"
     r"|lm_head\.(scale|softcap))$", None, "elementwise"),
)
_SUFFIX = re.compile(r"\.(backward|grad_input|grad_weight)$")

_VIEWS = ("as_strided|view|_unsafe_view|view_as|reshape|select|slice|narrow|split|split_with_sizes|chunk|unbind|"
          "transpose|t|permute|expand|expand_as|unsqueeze|squeeze|alias|detach|resolve_conj|resolve_neg|to|"
          "item|_local_scalar_dense|result_type|promote_types|contiguous|flatten|unflatten|numpy_T|lift_fresh")
MEASURED_RULES: tuple[tuple[str, str | None], ...] = (
    (r"^Optimizer\.", "optimizer"),
    (r"RMSNorm|LayerNorm|^aten::(native_layer_norm|layer_norm|rms_norm|_fused_rms_norm)", "norm"),
    (r"^aten::(cross_entropy_loss|_?log_softmax|nll_loss\w*|_log_softmax_backward_data)$|NllLoss|LogSoftmax",
     "loss"),
    (r"scaled_dot_product|ScaledDotProduct", "attention"),
    (r"^aten::(mm|addmm|bmm|baddbmm|_grouped_mm|matmul|linear|einsum|mv|addmv)$", "matmul"),
    (r"^aten::embedding|Embedding", "embedding"),
    (r"PermuteRows", "dispatch"),
    (r"^aten::(copy_|_to_copy|clone|fill_|zero_|zeros|zeros_like|ones|ones_like|full|empty|empty_like|"
     r"empty_strided|new_zeros|new_empty|new_empty_strided|resize_)$", "copy"),
    (rf"^aten::({_VIEWS})$", None),
    (r"^aten::", "elementwise"),  # every other aten op: arithmetic, activations, reductions, cat, sort
)


def predicted_category(name: str, kind: str) -> str:
    """The category of a predicted op (`PREDICTED_RULES`); ValueError for an op no rule names."""
    base = _SUFFIX.sub("", name)
    for pattern, rule_kind, category in PREDICTED_RULES:
        if (rule_kind is None or rule_kind == kind) and re.search(pattern, base):
            return category
    raise ValueError(f"predicted op {name!r} (kind {kind!r}) has no category: add it to PREDICTED_RULES")


def _event_category(name: str) -> str | None:
    for pattern, category in MEASURED_RULES:
        if re.search(pattern, name):
            return category
    return None


def measured_category(path: list[str] | tuple[str, ...]) -> str:
    """The category of a profiled event from its call path (outermost first): the outermost event's that has one,
    else "framework" (module docstring)."""
    for name in path:
        category = _event_category(name)
        if category is not None:
            return category
    return "framework"


def _host_shares(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per phase, each category's share of the phase's launches: how a measured host overhead row (`HOST_OVERHEAD`)
    is spread over the categories, as the roofline spreads it over the phases. The profiler counts an op's dispatch
    in that op's own self time, so the host time belongs with the ops that incur it; a phase without launches
    keeps it in "framework"."""
    launches: dict[str, dict[str, float]] = {}  # phase -> category -> launches
    for row in rows:
        if row["name"] != HOST_OVERHEAD and row["launches"]:
            counts = launches.setdefault(row["phase"], {})
            category = predicted_category(row["name"], row["kind"])
            counts[category] = counts.get(category, 0.0) + row["launches"]
    return {phase: {c: n / sum(counts.values()) for c, n in counts.items()} for phase, counts in launches.items()}


def categorize_predicted(results: list[dict[str, Any]], top: int = 3) -> tuple[dict[str, float], dict[str, list]]:
    """Predicted seconds per category, the mean over `predict` documents (one, or a decode point's contexts), and
    each category's `top` slowest ops (name, seconds). A measured host overhead is spread over the categories by
    their launches (`_host_shares`), listed in each as a "host_overhead" entry."""
    by_name: dict[str, dict[str, float]] = {c: {} for c in CATEGORIES}
    for result in results:
        shares = _host_shares(result["ops"])
        for row in result["ops"]:
            category = predicted_category(row["name"], row["kind"])
            split = shares.get(row["phase"], {category: 1.0}) if row["name"] == HOST_OVERHEAD else {category: 1.0}
            for name, share in split.items():
                names = by_name[name]
                names[row["name"]] = names.get(row["name"], 0.0) + share * row["seconds"] / len(results)
    return {c: sum(names.values()) for c, names in by_name.items()}, _slowest(by_name, top)


def _slowest(by_name: dict[str, dict[str, float]], count: int) -> dict[str, list]:
    return {c: sorted(names.items(), key=lambda item: -item[1])[:count] for c, names in by_name.items()}


def categorize_measured(events: list[dict[str, Any]], on_device: bool,
                        top: int = 3) -> tuple[dict[str, float], dict[str, list]]:
    """Measured seconds per category per step (self CPU time, or kernel time `on_device`), and each category's
    `top` slowest event names (name, seconds) for display."""
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    by_name: dict[str, dict[str, float]] = {c: {} for c in CATEGORIES}
    for event in events:
        category = measured_category(event["path"])
        value = event["self_device_s"] if on_device else event["self_cpu_s"]
        seconds[category] += value
        name = event["path"][-1]
        by_name[category][name] = by_name[category].get(name, 0.0) + value
    return seconds, _slowest(by_name, top)


def compare_categories(predicted: dict[str, float], measured: dict[str, float],
                       predicted_top: dict[str, list] | None = None,
                       measured_top: dict[str, list] | None = None) -> list[dict[str, Any]]:
    """One row per category with time on either side: predicted and measured seconds, the signed error (None when
    nothing was measured), each side's share of its own total and its slowest ops."""
    predicted_total, measured_total = sum(predicted.values()), sum(measured.values())
    rows = []
    for category in CATEGORIES:
        p, m = predicted.get(category, 0.0), measured.get(category, 0.0)
        if p == 0 and m == 0:
            continue
        rows.append({"category": category, "predicted_s": p, "measured_s": m,
                     "error": (p - m) / m if m > 0 else None,
                     "predicted_share": p / predicted_total if predicted_total else 0.0,
                     "measured_share": m / measured_total if measured_total else 0.0,
                     "predicted_ops": [{"name": n, "seconds": s} for n, s in (predicted_top or {}).get(category, [])],
                     "measured_ops": [{"name": n, "seconds": s} for n, s in (measured_top or {}).get(category, [])]})
    return rows


def difference_events(longer: list[dict[str, Any]], shorter: list[dict[str, Any]],
                      steps: int) -> list[dict[str, Any]]:
    """Per-step events of the part of a call that a shorter call lacks: for every call path, (longer − shorter) ÷
    `steps` of its calls and self times (how a decode step is isolated from `generate`: the call with n + 1 new
    tokens less the prefill-only call, over its n decode steps). A path's difference may be slightly negative
    from noise; the sums over categories are what is compared."""
    require_int("steps", steps, 1)
    keys = ("calls", "self_cpu_s", "self_device_s")
    rows: dict[tuple[str, ...], dict[str, float]] = {}
    for events, sign in ((longer, 1), (shorter, -1)):
        for event in events:
            row = rows.setdefault(tuple(event["path"]), dict.fromkeys(keys, 0.0))
            for key in keys:
                row[key] += sign * event[key] / steps
    return [{"path": list(path), **row} for path, row in rows.items()]


def _measure_step(module: Any, source: ModelSource, mode: str, input_ids: Any, device: Any, warmup: int,
                  repeats: int, new_tokens: int) -> tuple[list[dict[str, Any]], dict[str, float], float]:
    """The profiled events, unprofiled timing (mean_s, min_s) and profiled time of one step of `mode`. prefill:
    `generate` of one token (the prompt's forward and the first token's choice, as `compare` times it); decode:
    one decoding step, the difference of `generate` with new_tokens + 1 tokens and the prefill-only call ÷
    new_tokens (`difference_events`)."""
    from profiler.measuring import harness, op_profile

    if mode in ("forward", "train"):
        step, _ = harness.make_step(module, mode, input_ids, zoo=source.is_zoo)
        run = op_profile.profile_step(step, device, warmup, repeats)
        return run["events"], run["timing"], run["profiled_step_s"]
    generate, prefill = harness.make_step(module, "generate", input_ids, new_tokens + 1, source.is_zoo)
    short = op_profile.profile_step(prefill, device, warmup, repeats)
    if mode == "prefill":
        return short["events"], short["timing"], short["profiled_step_s"]
    long = op_profile.profile_step(generate, device, warmup, repeats)
    timing = harness.decode_step_timing(long["timing"], short["timing"], new_tokens, ("mean_s", "min_s"))
    profiled = (long["profiled_step_s"] - short["profiled_step_s"]) / new_tokens
    return difference_events(long["events"], short["events"], new_tokens), timing, profiled


def op_comparison(source: ModelSource, mode: str, batch: int, seq_len: int, device_name: str = "cpu",
                  dtype: str = "float32", clock: str = "wall", repeats: int = 3, warmup: int = 2,
                  profile: HardwareProfile | None = None, estimate: str = "likely", top: int = 3,
                  new_tokens: int = DECODE_TOKENS) -> dict[str, Any]:
    """The per-category comparison of one step (module docstring) as plain data, naming each category's `top`
    slowest ops on either side. prefill: a prompt of `seq_len` tokens; decode: one step after a context of
    `seq_len`, measured over `new_tokens` steps and predicted as the mean over their contexts, as `compare` does
    (`profiler.workload.point_workloads`). Without `profile` the device is calibrated first as `compare`
    does (generic points, then the workload's own shapes), with the same clock as the measurement."""
    import torch

    from profiler.measuring import harness, host_overhead, model_shapes
    from profiler.measuring.calibration import calibrate
    from profiler.measuring.device import timing_device

    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of {list(MODES)}")
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r} must be one of {list(CLOCKS)}")
    require_int("new_tokens", new_tokens, 1)
    if device_name.split(":")[0] not in PROFILED_DEVICES:
        raise ValueError(f"device={device_name!r}: torch.profiler records op times on {' and '.join(PROFILED_DEVICES)} "
                         f"only (MPS kernels run asynchronously and are not timed per op); use --device cpu or cuda")
    device, clock = timing_device(device_name, clock)
    workloads = point_workloads(mode, batch, seq_len, dtype, new_tokens, device.type)
    if profile is None:
        profile = calibrate(device, name="ops_calibrated", only_dtypes=(dtype,))
        profile = model_shapes.calibrate_for_workloads(profile, [(source.arch, workloads[len(workloads) // 2])],
                                                       device, repeats)
        profile = host_overhead.calibrate_host_overheads(profile, [(source, workloads[0])], device, warmup, repeats,
                                                         new_tokens)
    results = [predict(source.arch, profile, workload, estimate) for workload in workloads]
    predicted_s = sum(result["seconds"] for result in results) / len(results)
    predicted, predicted_top = categorize_predicted(results, top)

    module = harness.load_model(source, device, dtype)
    input_ids = torch.randint(source.arch.vocab_size, (batch, seq_len),
                              generator=torch.Generator().manual_seed(0)).to(device.torch_device)
    events, timing, profiled_step = _measure_step(module, source, mode, input_ids, device, warmup, repeats,
                                                  new_tokens)
    measured, measured_top = categorize_measured(events, on_device=device.type == "cuda", top=top)
    profiled_ops = sum(measured.values())
    return {
        "model": source.name, "hardware": profile.name, "estimate": estimate,
        "workload": {"mode": mode, "batch": batch, "seq_len": seq_len, "dtype": dtype,
                     "new_tokens": new_tokens if mode == "decode" else None},
        "environment": {"device": device.describe(), "threads": torch.get_num_threads(), "clock": clock,
                        "torch": torch.__version__, "repeats": repeats, "warmup": warmup,
                        "measured_time": "kernel (CUDA) time" if device.type == "cuda" else "host self time"},
        "categories": compare_categories(predicted, measured, predicted_top, measured_top),
        "totals": {"predicted_s": predicted_s, "profiled_ops_s": profiled_ops,
                   "profiled_step_s": profiled_step,
                   "unprofiled_mean_s": timing["mean_s"], "unprofiled_min_s": timing["min_s"],
                   "overhead": profiled_step / timing["mean_s"] - 1,
                   "error_vs_unprofiled": (predicted_s - timing["mean_s"]) / timing["mean_s"],
                   "error_vs_profiled_ops": (predicted_s - profiled_ops) / profiled_ops},
    }
