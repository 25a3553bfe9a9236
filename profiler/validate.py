"""`python -m profiler validate MODEL`: the analytic formulas against counts on the real module, component by component.

MODEL is a zoo size or a config.json. The real module is built without weights where possible (`--device meta`,
the default; `--device cpu` allocates random weights, so that the counter can read attention masks):

* zoo models, on meta with the token-routed MLP replaced by a dense SwiGLU one expert wide (same matmul FLOPs,
  `profiler.counting.models.zoo_model_for_counting`), parameters then counted on the real routed model;
* HF configs through transformers' own implementation (`profiler.counting.hf`): dense models at full size;
  mixture-of-experts models (Mixtral, DeepSeek-V3) on CPU with random weights, scaled down
  (`hf.scaled_down`), since routing reads the router's scores. The analytic side is then computed for that same
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

import argparse
import importlib.util
import json
from dataclasses import dataclass, field
from typing import Any

from profiler.arch import ArchSpec, from_complexity_config, from_hf_dict, load_arch
from profiler.formulas import flops as F
from profiler.formulas.params import count_params

FORMATS = ("table", "json")
CONVENTION = "dense"
COUNTERS = ("parameters", "ours", "flop_counter_mode", "fvcore")
STATUSES = ("ok", "over_tolerance", "known_gap")
FLOP_COMPONENTS = ("attention_qkv", "attention_core", "attention_out", "mlp", "router", "lm_head", "unattributed")
PARAM_COMPONENTS = ("embeddings", "attention", "mlp", "router", "norms", "head", "unattributed")
DEFAULT_TOLERANCE = 1e-3
DEVICES = ("meta", "cpu")
SEED = 0  # token ids, and the random weights of modules built on CPU

_ATTENTION_MODULES = ("self_attn", "attn", "attention")
_MLP_MODULES = ("mlp", "block_sparse_moe", "feed_forward")
_EMBEDDINGS = ("embed_tokens", "wte", "wpe")
_NORMS = ("norm", "ln_")
# transformers keeps DeepSeek-V3's score-correction bias as a buffer; the formulas count it as a router parameter.
_PARAMETER_BUFFERS = ("e_score_correction_bias",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validate", help="analytic formulas vs FLOPs counted on the real module",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a zoo size name or a HF-style config.json path")
    parser.add_argument("--batch", type=int, default=1, help="sequences (default 1)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help=f"largest relative error of a FLOP count (default {DEFAULT_TOLERANCE:g}); "
                             "parameters must match exactly")
    parser.add_argument("--device", default="meta", choices=DEVICES,
                        help="where dense models are built (default meta: no memory); cpu allocates random "
                             "weights and lets the counter read attention masks (sliding windows); MoE models "
                             "always run on cpu")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = validate(args.model, batch=args.batch, seq_len=args.seq_len, tolerance=args.tolerance,
                      device=args.device)
    print(json.dumps(result, indent=2) if args.format == "json" else render_table(result))
    return 0 if result["passed"] else 1


# ---------------------------------------------------------------------------------------------- the real module
@dataclass
class RealModel:
    """A module to count and the architecture the formulas should describe for it."""

    arch: ArchSpec
    module: Any  # torch.nn.Module that runs the training step
    param_module: Any  # torch.nn.Module whose parameters are counted (the zoo's routed model; else `module`)
    input_ids: Any  # torch.Tensor [batch, seq_len]
    device: str
    notes: list[str] = field(default_factory=list)


def build_real_model(model: str, batch: int, seq_len: int, device: str = "meta") -> RealModel:
    """The real module of MODEL (see module docstring) with its inputs, on `device` (MoE models: always CPU)."""
    import torch

    from complexity.config import SIZES, ComplexityConfig, config_for_size
    from complexity.models.modeling import ComplexityForCausalLM
    from profiler.counting import hf
    from profiler.counting.models import zoo_model_for_counting

    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not one of {DEVICES}")
    arch = load_arch(model)  # also rejects an unknown name or a bad file
    config = None if model in SIZES else _read_json(model)
    generator = torch.Generator().manual_seed(SEED)
    if arch.model_type == "complexity":
        zoo_config = ComplexityConfig.from_dict(config) if config is not None else config_for_size(model)
        _check_seq_len(seq_len, zoo_config.max_position_embeddings, "max_position_embeddings")
        module = zoo_model_for_counting(zoo_config, device)
        notes = []
        param_module = module
        if device == "meta" and zoo_config.use_token_routed_mlp:
            with torch.device("meta"):
                param_module = ComplexityForCausalLM(zoo_config)
            notes.append("token-routed MLP counted through a dense stand-in one expert wide (same matmul FLOPs); "
                         "parameters counted on the routed model")
        arch = from_complexity_config(zoo_config, arch.name)
        vocab_size = zoo_config.vocab_size
    elif arch.model_type in hf.MOE_MODEL_TYPES:
        config, device = hf.scaled_down(config), "cpu"
        torch.manual_seed(SEED)
        module = param_module = hf.build_hf_model(config, device)
        notes = [f"mixture of experts: transformers' module built scaled down on CPU with random weights (seed "
                 f"{SEED}); the formulas are evaluated for the same scaled-down config"]
        arch = from_hf_dict(config, f"{arch.name} (scaled down)")
        vocab_size = config["vocab_size"]
    else:
        if arch.learned_positions:
            _check_seq_len(seq_len, arch.learned_positions, "its learned position table")
        module = param_module = hf.build_hf_model(config, device)
        notes, vocab_size = [], arch.vocab_size
    ids = torch.randint(0, vocab_size, (batch, seq_len), generator=generator).to(device)
    return RealModel(arch, module, param_module, ids, device, notes)


def _read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _check_seq_len(seq_len: int, limit: int, what: str) -> None:
    if seq_len > limit:
        raise ValueError(f"seq_len={seq_len} must be <= {limit} ({what} of this model)")


# ---------------------------------------------------------------------------------------------- counting
def param_component(name: str) -> str:
    """The params-formula component of a parameter (or counted buffer) from its name in `named_parameters()`."""
    parts = name.split(".")
    if parts[0] == "lm_head":
        return "head"
    if any(p in _EMBEDDINGS for p in parts):
        return "embeddings"
    if any(p in _ATTENTION_MODULES for p in parts):
        return "attention"
    if any(p in _MLP_MODULES for p in parts):
        return "router" if "gate" in parts else "mlp"
    if len(parts) > 1 and any(marker in parts[-2] for marker in _NORMS):
        return "norms"
    return "unattributed"


def counted_params(module: Any) -> dict[str, int]:
    """Parameters of `module` (tied ones once) plus `_PARAMETER_BUFFERS`, by `PARAM_COMPONENTS`."""
    totals = dict.fromkeys(PARAM_COMPONENTS, 0)
    buffers = [(n, b) for n, b in module.named_buffers() if n.rsplit(".", 1)[-1] in _PARAMETER_BUFFERS]
    for name, tensor in [*module.named_parameters(), *buffers]:
        totals[param_component(name)] += tensor.numel()
    return totals


@dataclass
class CounterResult:
    """One counter's matmul FLOPs by `FLOP_COMPONENTS`; backward None when only its total is known."""

    forward: dict[str, int]
    backward: dict[str, int] | None
    backward_total: int | None
    attention_kernel: str | None  # the kernel whose backward formula applies; None: no attention backward compared
    gaps: dict[str, str] = field(default_factory=dict)  # component -> why the counter misses it
    unknown_ops: dict[str, int] = field(default_factory=dict)
    forward_ops: frozenset[str] = frozenset()  # op names seen in the forward
    causal_attention: dict[str, int | None] = field(default_factory=dict)  # phase -> attention core, causal


def count_ours(real: RealModel) -> CounterResult:
    """Our FlopCounter over one training step: both phases by component, the causal attention core where the
    masks could be read, and the attention kernel that ran (fused when an SDPA kernel op was seen, else math)."""
    from profiler.counting.hf import by_component
    from profiler.counting.models import count_training_step

    counts = count_training_step(real.module, real.input_ids)
    fused = any("scaled_dot_product" in op for op in counts.by_op("forward"))
    backward = by_component(counts, "backward")
    causal = {phase: None if counts.matmul_causal(phase) is None
              else by_component(counts, phase, "matmul_causal")["attention_core"] for phase in ("forward", "backward")}
    return CounterResult(by_component(counts, "forward"), backward, sum(backward.values()),
                         "fused" if fused else "math", unknown_ops=dict(counts.unknown),
                         forward_ops=frozenset(counts.by_op("forward")), causal_attention=causal)


def count_flop_counter_mode(real: RealModel, grouped_mm: bool) -> CounterResult:
    """torch.utils.flop_counter.FlopCounterMode, forward and backward in separate modes (it has no phases).
    `grouped_mm`: the experts run through torch._grouped_mm (as our counter saw), which this counter misses."""
    from torch.utils.flop_counter import FlopCounterMode

    from profiler.counting import exclusive_by_module
    from profiler.counting.hf import components_of

    with FlopCounterMode(display=False) as forward_mode:
        loss = real.module(real.input_ids, labels=real.input_ids).loss
    with FlopCounterMode(display=False) as backward_mode:
        loss.backward()
    exclusive = exclusive_by_module(forward_mode.get_flop_counts(), root="Global")
    forward = components_of((path, str(op), value) for path, ops in exclusive.items() for op, value in ops.items())
    seen = {str(op) for ops in exclusive.values() for op in ops}
    gaps = {}
    if not forward["attention_core"]:
        gaps["attention_core"] = ("FlopCounterMode has no formula for the CPU flash attention kernel "
                                  "(aten._scaled_dot_product_flash_attention_for_cpu) and counts it as 0")
    if grouped_mm:
        gaps["mlp"] = "FlopCounterMode has no formula for torch._grouped_mm (the MoE experts) and counts it as 0"
    kernel = None if "attention_core" in gaps else ("fused" if any("scaled_dot_product" in op for op in seen)
                                                    else "math")
    return CounterResult(forward, None, int(backward_mode.get_total_flops()), kernel, gaps)


def count_fvcore(real: RealModel) -> CounterResult:
    """fvcore with our handles over the forward pass (jit.trace), by component; its unsupported ops listed."""
    from profiler.counting.fvcore_adapter import fvcore_counts
    from profiler.counting.hf import components_of

    counts = fvcore_counts(real.module, (real.input_ids,))
    forward = components_of((path, op, value) for path, ops in counts.matmul_by_module.items()
                            for op, value in ops.items())
    return CounterResult(forward, None, None, None, unknown_ops=dict(counts.unsupported))


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


def relative_error(analytic: int, counted: int) -> float:
    """|counted - analytic| / analytic; a count where the formula expects none is a full error (1.0)."""
    if analytic == 0:
        return 0.0 if counted == 0 else 1.0
    return abs(counted - analytic) / analytic


def make_row(quantity: str, component: str, counter: str, analytic: int, counted: int | None, tolerance: float,
             note: str = "", known_gap: bool = False) -> dict[str, Any]:
    """One comparison; a known gap keeps its figures but is never judged against the tolerance."""
    error = None if counted is None else relative_error(analytic, counted)
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


def validate(model: str, batch: int = 1, seq_len: int = 128, tolerance: float = DEFAULT_TOLERANCE,
             device: str = "meta") -> dict[str, Any]:
    """The whole comparison as plain data (the `--format json` document)."""
    _check_inputs(batch=batch, seq_len=seq_len, tolerance=tolerance)
    real = build_real_model(model, batch, seq_len, device)
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


def _check_inputs(batch: int, seq_len: int, tolerance: float) -> None:
    for name, value in (("batch", batch), ("seq_len", seq_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance={tolerance!r} must be in [0, 1)")


# ---------------------------------------------------------------------------------------------- rendering
def render_table(result: dict[str, Any]) -> str:
    from profiler.analyze import render_rows

    header = [f"{result['model']} on {result['device']}: batch {result['batch']}, seq_len {result['seq_len']}; "
              f"{result['convention']}; tolerance {result['tolerance']:g}",
              "attention kernel of the backward formula: " + ", ".join(f"{k} {v or 'not compared'}"
                                                          for k, v in result["attention_kernel"].items())]
    header += [f"note: {note}" for note in result["notes"]]
    header += [f"unknown to {name}: {ops}" for name, ops in result["unknown_ops"].items() if ops]
    cells = [{"quantity": row["quantity"], "component": row["component"], "counter": row["counter"],
              "analytic": _number(row["analytic"]), "counted": _number(row["counted"]),
              "rel_error": "-" if row["rel_error"] is None else f"{row['rel_error']:.2e}",
              "status": row["status"], "note": row["note"]} for row in result["rows"]]
    verdict = f"max_rel_error {result['max_rel_error']:.2e}: {'passed' if result['passed'] else 'FAILED'}"
    return "\n".join(header) + "\n\n" + render_rows(cells, "table") + "\n\n" + verdict


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"

