"""`python -m profiler estimate-training`: how long a training run takes on a device, and whether it fits.

`profiler.predict.training`'s docstring gives the arithmetic."""

from __future__ import annotations

import argparse
import json
from typing import Any

from complexity.inputs import require_int
from profiler.hardware import load_profile
from profiler.predict.training import estimate_training
from profiler.source import resolve

FORMATS = ("table", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("estimate-training", help="training time and memory fit on a device",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--hardware", required=True, help="a shipped hardware profile name or a profile JSON path")
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
        require_int("tokens", args.tokens, 1)
    sequences = args.sequences if args.sequences is not None else -(-args.tokens // max(args.seq_len, 1))
    if args.extra_params != int(args.extra_params):
        raise ValueError(f"extra_params={args.extra_params!r} must be a whole number of parameters >= 0")
    report = estimate_training(resolve(args.model).arch, load_profile(args.hardware), sequences, args.epochs,
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
