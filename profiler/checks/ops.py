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
the categories add up to the profiled total. The lm head's product is a matmul like any other (aten names do not
say which product it is); its element-wise ops (scaling, soft-cap) are "elementwise". The autograd engine sums
gradients that meet at one tensor inside the node that produced the second one, so the tied head's gradient sum
counts as "embedding" and the residual stream's gradient sums land in whichever category's backward ran before
them (the predictor lists those as "elementwise").

Error = (predicted − measured) ÷ measured, measured under the profiler, which slows every op: the totals show the
profiled step beside the same step timed without it (`overhead` = profiled ÷ unprofiled − 1).
"""

from __future__ import annotations

import re
from typing import Any

from profiler.hardware import HardwareProfile
from profiler.predict.roofline import predict
from profiler.source import ModelSource
from profiler.workload import Workload

CATEGORIES = ("matmul", "attention", "norm", "elementwise", "embedding", "dispatch", "loss", "optimizer", "copy",
              "framework")
MODES = ("forward", "train")
PROFILED_DEVICES = ("cpu", "cuda")  # where torch.profiler times each op (CPU: host self time; CUDA: kernels)
CLOCKS = ("auto", "wall", "cpu")  # auto: cpu on the CPU device with one torch thread, else wall

# (name pattern, kind or None for any kind, category): the first rule that matches wins.
PREDICTED_RULES: tuple[tuple[str, str | None, str], ...] = (
    (r"^optimizer\.adamw\[\d+\]$", None, "optimizer"),
    (r"^loss\.(log_softmax|nll|nll_grad_table)$", None, "loss"),
    (r"^attention\.(sdpa|scores|values|mask_softmax|softcap)$", None, "attention"),
    (r"^(norm\.\w+|attention\.qk_norm)$", None, "norm"),
    (r"^(embedding|position_embedding|embedding\.grad_table)$", None, "embedding"),
    (r"^mlp\.dispatch$", None, "dispatch"),
    (r"", "matmul", "matmul"),  # every projection, expert slice, router and the lm head
    (r"^lm_head\.tied_grad_sum$", None, "embedding"),  # the engine adds the tied table's two gradients there
    (r"^(residual\.(add|scale|grad_sum)|attention\.(rope|kv_cache_append)|embedding\.scale|routing"
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


def categorize_predicted(result: dict[str, Any], top: int = 3) -> tuple[dict[str, float], dict[str, list]]:
    """Predicted seconds per category from a `predict` document, and each category's `top` slowest ops
    (name, seconds)."""
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    by_name: dict[str, dict[str, float]] = {c: {} for c in CATEGORIES}
    for row in result["ops"]:
        category = predicted_category(row["name"], row["kind"])
        seconds[category] += row["seconds"]
        by_name[category][row["name"]] = by_name[category].get(row["name"], 0.0) + row["seconds"]
    return seconds, _slowest(by_name, top)


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


def op_comparison(source: ModelSource, mode: str, batch: int, seq_len: int, device_name: str = "cpu",
                  dtype: str = "float32", clock: str = "wall", repeats: int = 3, warmup: int = 2,
                  profile: HardwareProfile | None = None, estimate: str = "likely", top: int = 3) -> dict[str, Any]:
    """The per-category comparison of one step (module docstring) as plain data, naming each category's `top`
    slowest ops on either side. Without `profile` the device is calibrated first as `compare` does (generic points,
    then the workload's own shapes), with the same clock as the measurement."""
    import torch

    from profiler.measuring import harness, model_shapes, op_profile
    from profiler.measuring.calibration import calibrate
    from profiler.measuring.device import timing_device

    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of {list(MODES)}")
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r} must be one of {list(CLOCKS)}")
    if device_name.split(":")[0] not in PROFILED_DEVICES:
        raise ValueError(f"device={device_name!r}: torch.profiler records op times on {' and '.join(PROFILED_DEVICES)} "
                         f"only (MPS kernels run asynchronously and are not timed per op); use --device cpu or cuda")
    device, clock = timing_device(device_name, clock)
    workload = Workload(mode, batch, seq_len, dtype)
    if profile is None:
        profile = calibrate(device, name="ops_calibrated", only_dtypes=(dtype,))
        profile = model_shapes.calibrate_for_workloads(profile, [(source.arch, workload)], device, repeats)
    result = predict(source.arch, profile, workload, estimate)
    predicted, predicted_top = categorize_predicted(result, top)

    module = harness.load_model(source, device, dtype)
    input_ids = torch.randint(source.arch.vocab_size, (batch, seq_len),
                              generator=torch.Generator().manual_seed(0)).to(device.torch_device)
    step, _ = harness.make_step(module, mode, input_ids, zoo=source.is_zoo)
    measured_run = op_profile.profile_step(step, device, warmup, repeats)
    measured, measured_top = categorize_measured(measured_run["events"], on_device=device.type == "cuda", top=top)
    timing = measured_run["timing"]
    profiled_ops = sum(measured.values())
    return {
        "model": source.name, "hardware": profile.name, "estimate": estimate,
        "workload": {"mode": mode, "batch": batch, "seq_len": seq_len, "dtype": dtype},
        "environment": {"device": device.describe(), "threads": torch.get_num_threads(), "clock": clock,
                        "torch": torch.__version__, "repeats": repeats, "warmup": warmup,
                        "measured_time": "kernel (CUDA) time" if device.type == "cuda" else "host self time"},
        "categories": compare_categories(predicted, measured, predicted_top, measured_top),
        "totals": {"predicted_s": result["seconds"], "profiled_ops_s": profiled_ops,
                   "profiled_step_s": measured_run["profiled_step_s"],
                   "unprofiled_mean_s": timing["mean_s"], "unprofiled_min_s": timing["min_s"],
                   "overhead": measured_run["profiled_step_s"] / timing["mean_s"] - 1,
                   "error_vs_unprofiled": (result["seconds"] - timing["mean_s"]) / timing["mean_s"],
                   "error_vs_profiled_ops": (result["seconds"] - profiled_ops) / profiled_ops},
    }
