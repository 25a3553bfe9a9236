"""`python -m profiler estimate-training`: how long a training run takes on a device, and whether it fits.

The arithmetic (every figure is in the JSON output):

* steps per epoch = ⌈sequences ÷ (micro_batch × grad_accum)⌉ (a last, partial step is counted as a full one);
  steps = steps per epoch × epochs; micro-batches = steps × grad_accum.
* time per micro-batch = the predicted forward + backward of one micro-batch (`profiler.predict`, mode train,
  optimizer excluded) + the extra parameters' share (below); its bound is the predictor's.
* time per step = grad_accum × micro-batch + (grad_accum − 1) gradient additions (each later micro-batch adds
  into .grad: 3 passes over the parameters) + one AdamW step over all parameters (model + extra).
* training = steps × step time. Data preparation = sequences ÷ `--prep-rate` (tokenising once, before the first
  epoch). Evaluation = epochs × `--eval-sequences` ÷ micro_batch forward passes at the micro-batch shape.
  total = data preparation + training + evaluation.
* extra parameters (e.g. a small policy network trained alongside): P weights applied to every token as dense
  matmuls — 2·P FLOPs per token forward and 4·P backward, priced at the achievable FLOP/s of a
  [tokens, √P] @ [√P, √P] product — plus their gradients and AdamW state in memory and in the optimizer step.
* memory = weights + gradients + AdamW state (`profiler.formulas.memory`, model + extra parameters) +
  activations of one micro-batch (`implementation_activation_bytes`), against each memory size the profile lists.
* range: the same computation at the optimistic / likely / conservative end of the profile's calibrated spreads.
* sensitivity: total time and memory with the sequence length halved and doubled, and the micro-batch halved and
  doubled at a constant effective batch (grad_accum scaled the other way, where it stays a whole number).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from profiler.arch import ArchSpec, load_arch
from profiler.formulas import memory as M
from profiler.formulas.params import count_params
from profiler.hardware import ESTIMATES, HardwareProfile, load_profile
from profiler.ops import Workload, gradient_accumulation_op, optimizer_ops
from profiler.predict import op_time, predict

FORMATS = ("table", "json")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")


def _check_number(name: str, value: Any, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name}={value!r} must be a finite number >= {minimum:g}")


def extra_params_seconds(profile: HardwareProfile, params: int, tokens: int, dtype: str, estimate: str) -> float:
    """Forward + backward of P extra weights over `tokens` tokens: 6·P·tokens FLOPs at the achievable rate of a
    [tokens, √P] @ [√P, √P] product (see the module docstring)."""
    if params == 0:
        return 0.0
    width = max(math.isqrt(params), 1)
    return 6 * params * tokens / profile.matmul_flops_per_s(dtype, tokens, width, width, estimate)


def step_seconds(arch: ArchSpec, profile: HardwareProfile, seq_len: int, micro_batch: int, grad_accum: int,
                 extra_params: int, dtype: str, estimate: str) -> dict[str, Any]:
    """Seconds of one micro-batch and one optimizer step (module docstring)."""
    result = predict(arch, profile, Workload("train", micro_batch, seq_len, dtype), estimate)
    phases = result["seconds_by_phase"]
    micro = phases["forward"] + phases["backward"] + extra_params_seconds(profile, extra_params,
                                                                          micro_batch * seq_len, dtype, estimate)
    params = count_params(arch).total + extra_params
    optimizer = phases["optimizer"] + (sum(op_time(op, profile, dtype, estimate).seconds
                                           for op in optimizer_ops([extra_params])) if extra_params else 0.0)
    accumulate = op_time(gradient_accumulation_op(params, dtype), profile, dtype, estimate).seconds
    step = grad_accum * micro + (grad_accum - 1) * accumulate + optimizer
    return {"micro_batch_s": micro, "gradient_add_s": accumulate, "optimizer_s": optimizer, "step_s": step,
            "bound": result["bound"], "mfu": result["mfu"]}


def memory_fit(arch: ArchSpec, profile: HardwareProfile, seq_len: int, micro_batch: int, extra_params: int,
               dtype: str) -> dict[str, Any]:
    """Bytes of training state and one micro-batch's activations, against each memory size of the device."""
    params = count_params(arch).total + extra_params
    parts = {"weights": M.weight_bytes(params, dtype), "gradients": M.gradient_bytes(params, dtype),
             "optimizer": M.optimizer_bytes(params, "adamw", dtype),
             "activations": M.implementation_activation_bytes(arch, micro_batch, seq_len, dtype)}
    total = sum(parts.values())
    return {**parts, "total": total,
            "fits": {str(size): total <= size for size in profile.memory_bytes},
            "fraction_of_largest": total / profile.max_memory_bytes}


def estimate_training(arch: ArchSpec, profile: HardwareProfile, sequences: int, epochs: int, seq_len: int,
                      micro_batch: int, grad_accum: int, extra_params: int = 0, dtype: str = "float32",
                      prep_sequences_per_s: float = 1000.0, eval_sequences: int = 0,
                      with_sensitivity: bool = True) -> dict[str, Any]:
    """The whole estimate as plain data (the `--format json` document)."""
    for name, value, minimum in (("sequences", sequences, 1), ("epochs", epochs, 1), ("seq_len", seq_len, 1),
                                 ("micro_batch", micro_batch, 1), ("grad_accum", grad_accum, 1),
                                 ("extra_params", extra_params, 0), ("eval_sequences", eval_sequences, 0)):
        _check_int(name, value, minimum)
    _check_number("prep_sequences_per_s", prep_sequences_per_s, 1e-9)
    steps_per_epoch = -(-sequences // (micro_batch * grad_accum))
    steps = steps_per_epoch * epochs
    prep_s = sequences / prep_sequences_per_s
    eval_passes = epochs * -(-eval_sequences // micro_batch)
    scenarios = {}
    for estimate in ESTIMATES:
        timing = step_seconds(arch, profile, seq_len, micro_batch, grad_accum, extra_params, dtype, estimate)
        forward = predict(arch, profile, Workload("forward", micro_batch, seq_len, dtype), estimate)["seconds"]
        training_s, eval_s = steps * timing["step_s"], eval_passes * forward
        scenarios[estimate] = {**timing, "training_s": training_s, "data_preparation_s": prep_s,
                               "evaluation_s": eval_s, "total_s": prep_s + training_s + eval_s,
                               "total_hours": (prep_s + training_s + eval_s) / 3600}
    report = {
        "model": arch.name, "hardware": profile.name,
        "inputs": {"sequences": sequences, "epochs": epochs, "seq_len": seq_len, "micro_batch": micro_batch,
                   "grad_accum": grad_accum, "effective_batch": micro_batch * grad_accum,
                   "extra_params": extra_params, "dtype": dtype, "prep_sequences_per_s": prep_sequences_per_s,
                   "eval_sequences": eval_sequences},
        "params": count_params(arch).total + extra_params,
        "tokens": sequences * epochs * seq_len,
        "steps_per_epoch": steps_per_epoch, "steps": steps, "micro_batches": steps * grad_accum,
        "estimates": scenarios,
        "memory": memory_fit(arch, profile, seq_len, micro_batch, extra_params, dtype),
    }
    if with_sensitivity:
        report["sensitivity"] = sensitivity(arch, profile, sequences, epochs, seq_len, micro_batch, grad_accum,
                                            extra_params, dtype, prep_sequences_per_s, eval_sequences)
    return report


def sensitivity(arch: ArchSpec, profile: HardwareProfile, sequences: int, epochs: int, seq_len: int,
                micro_batch: int, grad_accum: int, extra_params: int, dtype: str, prep: float,
                eval_sequences: int) -> list[dict[str, Any]]:
    """Likely total hours and peak memory when one input changes (module docstring)."""
    variants = [("baseline", seq_len, micro_batch, grad_accum),
                ("seq_len / 2", max(seq_len // 2, 1), micro_batch, grad_accum),
                ("seq_len x 2", seq_len * 2, micro_batch, grad_accum)]
    if grad_accum % 2 == 0:
        variants.append(("micro_batch x 2", seq_len, micro_batch * 2, grad_accum // 2))
    if micro_batch % 2 == 0:
        variants.append(("micro_batch / 2", seq_len, micro_batch // 2, grad_accum * 2))
    rows = []
    for label, seq, micro, accum in variants:
        result = estimate_training(arch, profile, sequences, epochs, seq, micro, accum, extra_params, dtype, prep,
                                   eval_sequences, with_sensitivity=False)
        rows.append({"change": label, "seq_len": seq, "micro_batch": micro, "grad_accum": accum,
                     "total_hours": result["estimates"]["likely"]["total_hours"],
                     "memory_bytes": result["memory"]["total"],
                     "fits_largest": result["memory"]["total"] <= profile.max_memory_bytes})
    return rows


# ---------------------------------------------------------------------------------------------------- CLI
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("estimate-training", help="training time and memory fit on a device",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a zoo size name or a HF-style config.json path")
    parser.add_argument("--hardware", required=True, help="a profile name in configs/hardware or a profile JSON path")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--sequences", type=int, help="training sequences per epoch")
    size.add_argument("--tokens", type=int, help="training tokens per epoch (sequences = tokens / seq-len, rounded up)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--micro-batch", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--extra-params", type=float, default=0,
                        help="parameters trained alongside the model, e.g. 1e6 for a small policy network")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--prep-rate", type=float, default=1000.0,
                        help="data preparation (tokenising) rate, sequences/s (default 1000, an assumption)")
    parser.add_argument("--eval-sequences", type=int, default=0, help="sequences evaluated after every epoch")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.tokens is not None:
        _check_int("tokens", args.tokens, 1)
    sequences = args.sequences if args.sequences is not None else -(-args.tokens // max(args.seq_len, 1))
    if args.extra_params != int(args.extra_params):
        raise ValueError(f"extra_params={args.extra_params!r} must be a whole number of parameters >= 0")
    report = estimate_training(load_arch(args.model), load_profile(args.hardware), sequences, args.epochs,
                               args.seq_len, args.micro_batch, args.grad_accum, int(args.extra_params), args.dtype,
                               args.prep_rate, args.eval_sequences)
    print(json.dumps(report, indent=2) if args.format == "json" else render_table(report))
    return 0


def render_table(report: dict[str, Any]) -> str:
    i, mem = report["inputs"], report["memory"]
    likely = report["estimates"]["likely"]
    lines = [f"{report['model']} (+{i['extra_params']:,} extra params) on {report['hardware']}, {i['dtype']}",
             f"  {i['sequences']:,} sequences x {i['epochs']} epochs, seq_len {i['seq_len']}, micro-batch "
             f"{i['micro_batch']} x accumulation {i['grad_accum']} = {i['effective_batch']} per step",
             f"  steps {report['steps']:,} ({report['steps_per_epoch']:,} per epoch), micro-batches "
             f"{report['micro_batches']:,}, tokens {report['tokens']:,}",
             f"  micro-batch {likely['micro_batch_s'] * 1e3:,.1f} ms ({likely['bound']}-bound, MFU "
             f"{likely['mfu']:.1%}), optimizer {likely['optimizer_s'] * 1e3:,.1f} ms, step {likely['step_s']:,.3f} s",
             "", f"  {'estimate':<13} {'prep h':>8} {'train h':>10} {'eval h':>8} {'total h':>10}"]
    for name, e in report["estimates"].items():
        lines.append(f"  {name:<13} {e['data_preparation_s'] / 3600:>8.2f} {e['training_s'] / 3600:>10.1f} "
                     f"{e['evaluation_s'] / 3600:>8.2f} {e['total_hours']:>10.1f}")
    fits = ", ".join(f"{int(size) / 2**30:.0f} GiB: {'yes' if ok else 'no'}" for size, ok in mem["fits"].items())
    lines += ["", f"  memory {mem['total'] / 2**30:.2f} GiB (weights {mem['weights'] / 2**30:.2f}, gradients "
                  f"{mem['gradients'] / 2**30:.2f}, AdamW {mem['optimizer'] / 2**30:.2f}, activations "
                  f"{mem['activations'] / 2**30:.2f}); fits {fits}"]
    if "sensitivity" in report:
        lines += ["", f"  {'change':<16} {'seq':>6} {'micro':>6} {'accum':>6} {'total h':>10} {'memory GiB':>11}"]
        for row in report["sensitivity"]:
            lines.append(f"  {row['change']:<16} {row['seq_len']:>6} {row['micro_batch']:>6} {row['grad_accum']:>6} "
                         f"{row['total_hours']:>10.1f} {row['memory_bytes'] / 2**30:>11.2f}")
    return "\n".join(lines)
