"""The analytic formulas against counts on the real module, component by component (`python -m profiler validate`).

The real module comes from `ModelSource.build`, without weights where possible (device `meta`, the default; `cpu`
allocates random weights, so that the counter can read attention masks):

* zoo models, on meta with the token-routed MLP replaced by a dense SwiGLU one expert wide (same matmul FLOPs,
  `ModelSource.build(for_counting=True)`), parameters then counted on the real routed model;
* HF configs through transformers' own implementation: dense models at full size; mixture-of-experts models
  (Mixtral, DeepSeek-V2/V3, Qwen2/3-MoE, OLMoE) on CPU with random weights, scaled down
  (`ModelSource.scaled_down`), since routing reads
  the router's scores. The analytic side is then computed for that same
  scaled-down config. Top-k routing sends every token to exactly k experts whatever the scores, so the experts
  run T·k token rows in all and the formula's 2·T·k·(expert weights) is exact for any routing: which expert gets
  how many tokens changes, their sum does not (the backward likewise: dX and dW over the same rows).

One training step (next-token loss, labels = the inputs) is counted by our counter, by torch's FlopCounterMode and,
forward only, by fvcore with our handles. Each is compared with the formulas: parameters exactly, forward and
backward matmul FLOPs in the dense convention (all S×S attention scores, what the kernels compute), by component
(the attention core is scores + values) and in total; the attention core is also compared in the causal
convention (unmasked pairs, a sliding window's band) where the counter can read the mask. The analytic backward
uses the attention kernel each counter saw run (`flops.backward_flops`): our counter sees the fused CPU flash
kernel (also on meta, where it routes attention to it) unless no fused kernel takes the shapes (MLA's unequal head
widths: PyTorch's math path); FlopCounterMode on meta sees PyTorch's decomposition into bmm (the math path).

Known gaps of the other counters are rows with status `known_gap` and a note, excluded from `max_rel_error`:
FlopCounterMode prices the CPU flash kernel and `torch._grouped_mm` at 0 and files no backward op under a module
(its backward is compared in total only); fvcore traces the forward pass only; a mask on meta has no values and
the math path computes masked pairs too (no causal figure).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from complexity.inputs import require_int, require_number
from profiler.arch import ArchSpec
from profiler.counting.attribution import FLOP_COMPONENTS, counted_params
from profiler.formulas import flops as F
from profiler.formulas.params import count_params
from profiler.source import ModelSource

if TYPE_CHECKING:  # the counters import torch, only when a validation runs
    from profiler.counting.counters import CounterResult, RealModel

CONVENTION = "dense"
COUNTERS = ("parameters", "ours", "flop_counter_mode", "fvcore")
STATUSES = ("ok", "over_tolerance", "known_gap")
DEFAULT_TOLERANCE = 1e-3
DEVICES = ("meta", "cpu")
SEED = 0  # token ids, and the random weights of modules built on CPU


# ---------------------------------------------------------------------------------------------- the real module
def build_real_model(source: ModelSource, batch: int, seq_len: int, device: str = "meta") -> RealModel:
    """The real module of `source` (see module docstring) with its inputs, on `device` (MoE models: always CPU,
    scaled down)."""
    import torch

    from profiler.counting.counters import RealModel

    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not one of {DEVICES}")
    notes: list[str] = []
    if source.has_routed_experts:
        source, device = source.scaled_down(), "cpu"
        notes.append(f"mixture of experts: transformers' module built scaled down on CPU with random weights (seed "
                     f"{SEED}); the formulas are evaluated for the same scaled-down config")
    arch = source.arch
    if arch.learned_positions and seq_len > arch.learned_positions:  # GPT-2: no position beyond its table
        raise ValueError(f"seq_len={seq_len} must be <= {arch.learned_positions} (its learned position table)")
    if source.is_zoo and seq_len > arch.max_position_embeddings:  # the zoo's RoPE table ends there
        raise ValueError(f"seq_len={seq_len} must be <= {arch.max_position_embeddings} (max_position_embeddings "
                         "of this model)")
    with torch.random.fork_rng(devices=[]):  # reproducible random weights, the caller's RNG left as it was
        torch.manual_seed(SEED)
        module = source.build(device, for_counting=True)
    param_module = module
    if getattr(getattr(module, "config", None), "_attn_implementation", None) == "eager":
        notes.append("transformers has no SDPA path for this family (Gemma 2: soft-capped scores): eager attention, "
                     "whose products are the attention core, dense, with the math backward")
    if source.is_zoo and device == "meta" and source.zoo_config().use_token_routed_mlp:
        param_module = source.build("meta")
        notes.append("token-routed MLP counted through a dense stand-in one expert wide (same matmul FLOPs); "
                     "parameters counted on the routed model")
    generator = torch.Generator().manual_seed(SEED)
    ids = torch.randint(0, arch.vocab_size, (batch, seq_len), generator=generator).to(device)
    return RealModel(arch, module, param_module, ids, device, notes)


# ---------------------------------------------------------------------------------------------- comparing
def analytic_flops(arch: ArchSpec, batch: int, seq_len: int, attention_kernel: str,
                   convention: str = CONVENTION) -> dict[str, dict[str, int]]:
    """Forward and backward matmul FLOPs by `FLOP_COMPONENTS`, scores and values joined as attention_core."""
    forward = F.forward_flops(arch, batch, seq_len, convention)
    result = {}
    for phase, parts in (("forward", forward), ("backward", F.backward_flops(forward, attention_kernel))):
        joined = {name: value for name, value in parts.items() if name not in ("attention_scores", "attention_values")}
        joined["attention_core"] = parts["attention_scores"] + parts["attention_values"]
        result[phase] = {name: joined.get(name, 0) for name in FLOP_COMPONENTS}
    return result


def count_error(analytic: int, counted: int) -> float:
    """|counted - analytic| / analytic, the relative error of a count; a count where the formula expects none is
    a full error (1.0)."""
    if analytic == 0:
        return 0.0 if counted == 0 else 1.0
    return abs(counted - analytic) / analytic


def make_row(quantity: str, component: str, counter: str, analytic: int, counted: int | None, tolerance: float,
             note: str = "", known_gap: bool = False) -> dict[str, Any]:
    """One comparison; a known gap keeps its figures but is never judged against the tolerance."""
    error = None if counted is None else count_error(analytic, counted)
    if known_gap:
        status = "known_gap"
    else:
        status = "ok" if error is not None and error <= tolerance else "over_tolerance"
    return {"quantity": quantity, "component": component, "analytic": analytic, "counted": counted,
            "counter": counter, "rel_error": error, "status": status, "note": note}


def component_rows(quantity: str, counter: str, analytic: dict[str, int], counted: dict[str, int],
                   tolerance: float, gaps: dict[str, str]) -> list[dict[str, Any]]:
    """One row per component either side has (zeros on both sides skipped), then the total. A total that
    includes a known gap is itself a known gap."""
    rows = [make_row(quantity, name, counter, analytic[name], counted[name], tolerance, gaps.get(name, ""),
                     name in gaps) for name in analytic if analytic[name] or counted[name]]
    rows.append(make_row(quantity, "total", counter, sum(analytic.values()), sum(counted.values()), tolerance,
                         _includes(gaps), bool(gaps)))
    return rows


def _includes(gaps: dict[str, str]) -> str:
    return "includes " + ", ".join(sorted(gaps)) + " (known gaps above)" if gaps else ""


def compare(real: RealModel, batch: int, seq_len: int, tolerance: float,
            counters: dict[str, CounterResult]) -> list[dict[str, Any]]:
    """Every row: parameters (exact), then forward and backward per counter."""
    params = count_params(real.arch).components
    rows = component_rows("params", "parameters", {**params, "unattributed": 0}, counted_params(real.param_module),
                          0.0, {})
    for name, result in counters.items():
        kernel = result.attention_kernel or "fused"
        analytic = analytic_flops(real.arch, batch, seq_len, kernel)
        rows += component_rows("forward", name, analytic["forward"], result.forward, tolerance, result.gaps)
        if result.backward is not None:
            rows += component_rows("backward", name, analytic["backward"], result.backward, tolerance, result.gaps)
        elif result.backward_total is not None:  # FlopCounterMode
            note = "; ".join(filter(None, ["files backward ops under no module: compared in total only",
                                           _includes(result.gaps)]))
            rows.append(make_row("backward", "total", name, sum(analytic["backward"].values()),
                                 result.backward_total, tolerance, note, bool(result.gaps)))
        else:
            rows.append(make_row("backward", "total", name, sum(analytic["backward"].values()), None, tolerance,
                                 f"{name} traces the forward pass only", known_gap=True))
        rows += causal_rows(real, batch, seq_len, tolerance, name, result)
    return rows


def causal_rows(real: RealModel, batch: int, seq_len: int, tolerance: float, name: str,
                result: CounterResult) -> list[dict[str, Any]]:
    """The attention core in the causal convention (unmasked pairs, cut by a sliding window), for the counters that
    read masks (ours). Known gaps: a mask on the meta device has no values; the math path multiplies every pair
    and applies the mask afterwards, so what it computes is the dense figure."""
    rows = []
    analytic = analytic_flops(real.arch, batch, seq_len, result.attention_kernel or "fused", "causal")
    for phase, counted in result.causal_attention.items():
        if result.attention_kernel == "math":
            note, counted = "the math path computes every pair (its causal figure is the dense one)", None
        elif counted is None:
            note = "attention mask on the meta device has no values: causal pairs unknown"
        else:
            note = ""
        rows.append(make_row(f"{phase}_causal", "attention_core", name, analytic[phase]["attention_core"], counted,
                             tolerance, note, known_gap=bool(note)))
    return rows


def validate(source: ModelSource, batch: int = 1, seq_len: int = 128, tolerance: float = DEFAULT_TOLERANCE,
             device: str = "meta") -> dict[str, Any]:
    """The whole comparison as plain data (the `--format json` document)."""
    require_int("batch", batch)
    require_int("seq_len", seq_len)
    require_number("tolerance", tolerance, 0, 1, high_inclusive=False)
    from profiler.counting.counters import count_flop_counter_mode, count_fvcore, count_ours

    real = build_real_model(source, batch, seq_len, device)
    ours = count_ours(real)
    grouped_mm = "aten._grouped_mm" in ours.forward_ops
    counters = {"ours": ours, "flop_counter_mode": count_flop_counter_mode(real, grouped_mm)}
    if importlib.util.find_spec("fvcore") is not None:
        counters["fvcore"] = count_fvcore(real)
    else:
        real.notes.append("fvcore is not installed (it comes with the dev extra): its rows are left out")
    rows = compare(real, batch, seq_len, tolerance, counters)
    checked = [row["rel_error"] for row in rows if row["status"] != "known_gap"]
    return {
        "model": real.arch.name, "device": real.device, "batch": batch, "seq_len": seq_len, "tolerance": tolerance,
        "convention": f"{CONVENTION} attention (rows *_causal: unmasked pairs), matmul FLOPs (2 per multiply-add); "
                      "parameters exact",
        "attention_kernel": {name: result.attention_kernel for name, result in counters.items()},
        "unknown_ops": {name: result.unknown_ops for name, result in counters.items()},
        "notes": real.notes, "rows": rows, "max_rel_error": max(checked),
        "passed": all(row["status"] != "over_tolerance" for row in rows),
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """What `analyze --counted` embeds: the verdict and the rows."""
    keys = ("device", "convention", "tolerance", "max_rel_error", "passed", "notes", "rows")
    return {key: result[key] for key in keys}
