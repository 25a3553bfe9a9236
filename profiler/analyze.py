"""`python -m profiler analyze MODEL`: exact parameters, FLOPs and memory of a model, from its config alone.

The JSON output (`--format json`) is a stable interface documented in docs/profiler.md; FLOPs and bytes are plain
numbers. `--validate` checks every shipped config's analytic count against its published count instead;
`--counted` adds the comparison with FLOPs counted on the real module (`profiler.validate`, imports torch).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from profiler.arch import ArchSpec, from_json_file, load_arch
from profiler.formulas import flops as F
from profiler.formulas import memory as M
from profiler.formulas import scaling
from profiler.formulas.params import ParamCounts, count_params, router_bias_params

FORMATS = ("table", "json", "markdown", "csv")
MODELS_DIR = Path(__file__).resolve().parents[1] / "configs" / "models"
SCALING_SEQ_LENS = (512, 2048, 8192, 32768, 131072)
# NVIDIA H100 SXM dense BF16 Tensor Core peak, 989 TFLOP/s (NVIDIA H100 Tensor Core GPU datasheet).
DEFAULT_PEAK_TFLOPS = 989.0

ASSUMPTIONS = (
    "FLOPs: 2 per multiply-add, matrix products only (norms, softmax, activations, RoPE not counted).",
    "Attention FLOPs in two conventions: dense = all S x S query-key pairs; causal = unmasked pairs only "
    "(triangle, cut to a band by a sliding window).",
    "Backward = 2 x forward for every weight matmul (input and weight gradients, the first layer's input gradient "
    "included); attention core 3 x scores + 2 x values with a fused kernel (it recomputes the scores), 2 x with "
    "the math path (--attention-kernel); as counted on the real modules by `profiler validate`.",
    "forward/backward/train_step cover the whole batch (--batch sequences); activations are for one micro-batch "
    "(--batch / --grad-accum sequences); gradient accumulation reuses one gradient buffer.",
    "Mixed precision when --dtype is 16-bit: 16-bit weights and gradients, fp32 master weights and optimizer moments.",
    "6N uses N = active non-embedding parameters (Kaplan et al. 2020); detailed counts add the LM head and attention.",
    "Prefill runs the LM head on the last position only; decode attends min(C + 1, window) keys per layer.",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analyze", help="parameters, FLOPs and memory of a model from its config",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="a zoo size name or a HF-style config.json path")
    parser.add_argument("--batch", type=int, default=1, help="sequences per optimizer step (default 1)")
    parser.add_argument("--seq-len", type=int, default=2048, help="tokens per sequence (default 2048)")
    parser.add_argument("--context", type=int, help="KV-cache context for decode and inference memory (default seq-len)")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(M.DTYPE_BYTES),
                        help="weights/activations dtype; 16-bit means mixed precision (default bfloat16)")
    parser.add_argument("--optimizer", default="adamw", choices=sorted(M.OPTIMIZER_STATES))
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step; must divide --batch")
    parser.add_argument("--recompute", default="none", choices=F.RECOMPUTE, help="activation recomputation")
    parser.add_argument("--attention-kernel", default="fused", choices=F.ATTENTION_KERNELS,
                        help="attention backward: fused kernels recompute the scores (default), math stores them")
    parser.add_argument("--format", default="table", choices=FORMATS)
    budget = parser.add_argument_group("compute-optimal size for a budget (Hoffmann et al. 2022)")
    budget.add_argument("--training-budget", "--training_budget", type=float, metavar="USD",
                        help="dollar budget; prints the FLOPs it buys and the compute-optimal N and D")
    budget.add_argument("--price-per-hour", type=float, default=2.0, help="USD per device-hour (default 2.0)")
    budget.add_argument("--peak-tflops", type=float, default=DEFAULT_PEAK_TFLOPS,
                        help=f"device peak TFLOP/s (default {DEFAULT_PEAK_TFLOPS:g}, H100 SXM dense BF16)")
    budget.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilisation in (0, 1] (default 0.4)")
    parser.add_argument("--validate", action="store_true",
                        help="compare every shipped config's analytic count with its published count; exit 1 on a mismatch")
    parser.add_argument("--counted", action="store_true",
                        help="also count the real module's FLOPs and compare (profiler validate's summary under "
                             "'validation'; --batch and --seq-len apply)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.validate:
        rows = validate_published(MODELS_DIR)
        print(render_rows(rows, args.format))
        return 0 if all(row["match"] for row in rows) else 1
    if args.model is None and args.training_budget is None:
        raise ValueError("MODEL is required (a zoo size or a config.json), unless --validate or --training-budget")
    report: dict[str, Any] = {}
    if args.model is not None:
        report = analyze(load_arch(args.model), batch=args.batch, seq_len=args.seq_len, context=args.context,
                         dtype=args.dtype, optimizer=args.optimizer, grad_accum=args.grad_accum,
                         recompute=args.recompute, attention_kernel=args.attention_kernel)
        if args.counted:
            from profiler import validate  # imports torch, transformers and fvcore: only when asked

            report["validation"] = validate.summary(validate.validate(args.model, args.batch, args.seq_len))
    if args.training_budget is not None:
        report["training_budget"] = training_budget(args.training_budget, args.price_per_hour,
                                                    args.peak_tflops * 1e12, args.mfu)
    print(render(report, args.format))
    return 0


# ---------------------------------------------------------------------------------------------- the report
def params_section(arch: ArchSpec, counts: ParamCounts) -> dict[str, Any]:
    return {
        "total": counts.total, "active": counts.active, "embedding": counts.embedding,
        "non_embedding": counts.non_embedding, "active_non_embedding": counts.active_non_embedding,
        "active_compute": counts.active_compute, "components": counts.components,
        "active_components": counts.active_components,
        "router_bias_buffers": router_bias_params(arch),
    }


def analyze(arch: ArchSpec, batch: int = 1, seq_len: int = 2048, context: int | None = None,
            dtype: str = "bfloat16", optimizer: str = "adamw", grad_accum: int = 1,
            recompute: str = "none", attention_kernel: str = "fused") -> dict[str, Any]:
    """The whole report as plain data (the `--format json` document)."""
    context = seq_len if context is None else context
    if isinstance(grad_accum, bool) or not isinstance(grad_accum, int) or grad_accum < 1 or batch % grad_accum:
        raise ValueError(f"grad_accum={grad_accum!r} must be an integer >= 1 that divides batch={batch}")
    micro_batch = batch // grad_accum
    counts = count_params(arch)
    by_convention = {conv: F.forward_flops(arch, batch, seq_len, conv) for conv in F.CONVENTIONS}
    forward = {conv: sum(parts.values()) for conv, parts in by_convention.items()}
    backward = {conv: sum(F.backward_flops(parts, attention_kernel).values()) for conv, parts in by_convention.items()}
    recomputed = {conv: F.recompute_flops(parts, recompute) for conv, parts in by_convention.items()}
    prefill, decode = F.prefill_flops(arch, batch, seq_len), F.decode_flops(arch, batch, context)
    tokens = batch * seq_len

    weights = M.weight_bytes(counts.total, dtype)
    gradients = M.gradient_bytes(counts.total, dtype)
    optimizer_state = M.optimizer_bytes(counts.total, optimizer, dtype)
    activations = M.implementation_activation_bytes(arch, micro_batch, seq_len, dtype, recompute)
    kv_cache = M.kv_cache_bytes(arch, batch, context, dtype)
    prefill_working = M.prefill_working_bytes(arch, batch, seq_len, dtype)
    return {
        "model": arch.name, "model_type": arch.model_type,
        "architecture": {
            "layers": arch.num_layers, "hidden_size": arch.hidden_size, "vocab_size": arch.vocab_size,
            "attention": sorted({g.attention.kind for g in arch.layer_groups}),
            "mlp": sorted({g.mlp.kind for g in arch.layer_groups}),
            "sliding_window": sorted({g.attention.sliding_window or 0 for g in arch.layer_groups}),
            "tie_word_embeddings": arch.tie_word_embeddings,
        },
        "workload": {"batch": batch, "micro_batch": micro_batch, "grad_accum": grad_accum, "seq_len": seq_len,
                     "context": context, "dtype": dtype, "optimizer": optimizer, "recompute": recompute,
                     "attention_kernel": attention_kernel},
        "params": params_section(arch, counts),
        "flops": {
            "forward": forward["dense"], "forward_causal": forward["causal"],
            "backward": backward["dense"], "backward_causal": backward["causal"],
            "recompute": recomputed["dense"], "recompute_causal": recomputed["causal"],
            "train_step": forward["dense"] + backward["dense"] + recomputed["dense"],
            "train_step_causal": forward["causal"] + backward["causal"] + recomputed["causal"],
            "six_nd": F.six_n(counts.active_non_embedding, tokens),
            "palm": F.palm_flops_per_token(arch, counts.active_non_embedding, seq_len) * tokens,
            "prefill": sum(prefill.values()), "decode_per_token": sum(decode.values()),
            "components": {"dense": by_convention["dense"], "causal": by_convention["causal"],
                           "prefill": prefill, "decode_per_token": decode},
        },
        "six_n_vs_detailed": six_n_table(arch, counts, seq_len, attention_kernel),
        "memory": {
            "weights": weights, "gradients": gradients, "optimizer": optimizer_state,
            "master_weights": M.master_weight_bytes(counts.total, dtype),
            "activations": activations,
            "activations_korthikanti": M.korthikanti_activation_bytes(arch, micro_batch, seq_len, recompute),
            "kv_cache": kv_cache, "prefill_working": prefill_working,
            "train_peak": weights + gradients + optimizer_state + activations,
            "inference_peak": weights + kv_cache + prefill_working,
        },
        "assumptions": list(ASSUMPTIONS),
    }


def six_n_table(arch: ArchSpec, counts: ParamCounts, seq_len: int,
                attention_kernel: str = "fused") -> list[dict[str, Any]]:
    """Training FLOPs per token, detailed ((forward + backward) / S, both conventions) against 6N and PaLM, as S
    grows."""
    rows = []
    n = counts.active_non_embedding
    for s in sorted({*SCALING_SEQ_LENS, seq_len}):
        detailed = {conv: F.train_step_flops(arch, 1, s, conv, attention_kernel=attention_kernel) / s
                    for conv in F.CONVENTIONS}
        rows.append({"seq_len": s, "six_n": F.six_n(n), "palm": F.palm_flops_per_token(arch, n, s),
                     "detailed_dense": detailed["dense"], "detailed_causal": detailed["causal"],
                     "dense_over_six_n": detailed["dense"] / F.six_n(n),
                     "causal_over_six_n": detailed["causal"] / F.six_n(n)})
    return rows


def training_budget(budget_usd: float, usd_per_hour: float, peak_flops: float, mfu: float) -> dict[str, Any]:
    flops = scaling.budget_flops(budget_usd, usd_per_hour, peak_flops, mfu)
    ratio_n, ratio_d = scaling.optimal_by_ratio(flops)
    fit_n, fit_d = scaling.optimal_by_fit(flops)
    return {
        "budget_usd": budget_usd, "usd_per_device_hour": usd_per_hour, "peak_flops_per_s": peak_flops, "mfu": mfu,
        "device_hours": budget_usd / usd_per_hour, "flops": flops,
        "tokens_per_param_rule": {"params": ratio_n, "tokens": ratio_d, "tokens_per_param": scaling.TOKENS_PER_PARAM},
        "parametric_fit": {"params": fit_n, "tokens": fit_d, **scaling.CHINCHILLA_FIT},
        "assumptions": [
            "C = budget / price x 3600 s x peak FLOP/s x MFU; training compute C = 6 N D.",
            "Hoffmann et al. 2022 (arXiv:2203.15556): ~20 tokens per parameter (Approaches 1-2, Table 3); the "
            "parametric fit (Approach 3, eq. 10) with its published rounded constants gives a smaller N.",
            "Single-epoch training on fresh tokens; no allowance for failed runs, evaluation or inference cost.",
        ],
    }


def validate_published(models_dir: Path) -> list[dict[str, Any]]:
    """One row per published figure in configs/models/published.json, with the analytic count beside it."""
    with open(models_dir / "published.json", encoding="utf-8") as f:
        published = json.load(f)
    rows = []
    for name, checks in published.items():
        if name.startswith("_"):
            continue
        arch = from_json_file(models_dir / f"{name}.json")
        section = params_section(arch, count_params(arch))
        for check in checks:
            analytic, rounding = section[check["quantity"]], check["rounding"]
            rows.append({"model": name, "quantity": check["quantity"], "published": check["value"],
                         "rounding": rounding, "analytic": analytic,
                         "match": round(analytic / rounding) * rounding == check["value"],
                         "source": check["source"]})
    return rows


# ---------------------------------------------------------------------------------------------- rendering
_UNITS_BY_KEY = {"budget_usd": "USD", "usd_per_device_hour": "USD/h", "peak_flops_per_s": "FLOP/s",
                 "device_hours": "h", "seq_len": "tokens", "context": "tokens", "tokens": "tokens",
                 "batch": "sequences", "micro_batch": "sequences"}


def _unit(path: str) -> str:
    """The unit of a flattened JSON key, for the CSV's unit column."""
    top, last = path.split(".")[0].split("[")[0], path.rsplit(".", 1)[-1]
    if last in _UNITS_BY_KEY:
        return _UNITS_BY_KEY[last]
    if top == "memory":
        return "bytes"
    if top == "params" or last == "params":
        return "params"
    if "_over_" in last:
        return "ratio"
    return "FLOPs" if top in ("flops", "six_n_vs_detailed") or last == "flops" else ""


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [item for key, value in data.items() for item in _flatten(value, f"{prefix}.{key}" if prefix else key)]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        key = next(iter(data[0]))
        return [item for row in data for item in _flatten(row, f"{prefix}[{key}={row[key]}]")]
    return [(prefix, data)]


def human(value: float, unit: str) -> str:
    """A number on a human scale: GiB for bytes, k/M/G/T/P for counts and FLOPs."""
    if unit == "bytes":
        return f"{value / 2**30:,.3f} GiB"
    if unit == "ratio" or abs(value) < 1000:
        return f"{value:,.4g}"
    exponent = min(int(math.log10(abs(value)) // 3), 5)
    return f"{value / 10 ** (3 * exponent):,.3f} {' kMGTP'[exponent]}{'FLOP' if unit == 'FLOPs' else ''}".rstrip()


def _exact(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"


def sections(report: dict[str, Any]) -> list[tuple[str, list[dict[str, str]]]]:
    """The report as titled tables of strings (for the table and markdown formats)."""
    out: list[tuple[str, list[dict[str, str]]]] = []
    if "params" in report:
        arch, work = report["architecture"], report["workload"]
        out.append((f"{report['model']} ({report['model_type']})", [
            {"field": key, "value": ", ".join(map(str, v)) if isinstance(v, list) else str(v)}
            for key, v in {**arch, **work}.items()]))
        params = report["params"]
        out.append(("Parameters", [{"quantity": key, "exact": _exact(params[key]), "human": human(params[key], "")}
                                   for key, value in params.items() if isinstance(value, int)]))
        out.append(("Parameters by component", [
            {"component": name, "total": _exact(total), "active": _exact(params["active_components"][name])}
            for name, total in params["components"].items()]))
        flops, parts = report["flops"], report["flops"]["components"]
        out.append(("FLOPs by component (2 per multiply-add)", [
            {"component": name, **{kind: human(parts[kind][name], "FLOPs") for kind in parts}} for name in F.COMPONENTS]))
        out.append(("FLOPs", [{"quantity": key, "exact": _exact(value), "human": human(value, "FLOPs")}
                              for key, value in flops.items() if key != "components"]))
        out.append(("Training FLOPs per token: detailed vs 6N", [
            {"seq_len": str(row["seq_len"]), "6N": human(row["six_n"], "FLOPs"), "PaLM": human(row["palm"], "FLOPs"),
             "dense": human(row["detailed_dense"], "FLOPs"), "causal": human(row["detailed_causal"], "FLOPs"),
             "dense/6N": f"{row['dense_over_six_n']:.3f}", "causal/6N": f"{row['causal_over_six_n']:.3f}"}
            for row in report["six_n_vs_detailed"]]))
        out.append(("Memory", [{"quantity": key, "bytes": _exact(value), "human": human(value, "bytes")}
                               for key, value in report["memory"].items()]))
    if "validation" in report:
        check = report["validation"]
        notes = "".join(f"; note: {note}" for note in check["notes"])
        out.append((f"Validation against counted FLOPs ({check['device']}; {check['convention']}{notes}): max "
                    f"relative error {check['max_rel_error']:.2e}, {'passed' if check['passed'] else 'FAILED'}", [
            {"quantity": row["quantity"], "component": row["component"], "counter": row["counter"],
             "analytic": _exact(row["analytic"]), "counted": "-" if row["counted"] is None else _exact(row["counted"]),
             "status": row["status"]} for row in check["rows"]]))
    if "training_budget" in report:
        budget = report["training_budget"]
        rows = [{"quantity": path, "value": _exact(value)} for path, value in _flatten(budget)
                if isinstance(value, (int, float)) and not isinstance(value, bool)]
        out.append(("Compute-optimal size for the budget (Hoffmann et al. 2022)", rows))
    return out


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2)
    if fmt == "csv":
        rows = [{"quantity": path, "value": value, "unit": _unit(path)} for path, value in _flatten(report)
                if not isinstance(value, list)]
        return render_rows(rows, "csv")
    notes = report.get("assumptions", []) + report.get("training_budget", {}).get("assumptions", [])
    blocks = [(f"## {title}" if fmt == "markdown" else title) + "\n\n" + render_rows(rows, fmt)
              for title, rows in sections(report)]
    bullet = "- " if fmt == "markdown" else "* "
    blocks.append(("## Assumptions" if fmt == "markdown" else "Assumptions") + "\n\n"
                  + "\n".join(bullet + note for note in notes))
    return "\n\n".join(blocks)


def render_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    """A list of same-keyed dicts as an aligned text table, a Markdown table, CSV or JSON."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    header = list(rows[0])
    cells = [[str(row[key]) for key in header] for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells])
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)
