"""`python -m profiler estimate-training`: how long a training run takes on a device, and whether it fits.

`profiler.predict.training`'s docstring gives the arithmetic."""

from __future__ import annotations

import argparse
from typing import Any

from profiler.commands.arguments import (
    MAX_COUNT,
    dumps,
    hardware,
    integer,
    model,
    number,
    require_finite,
    require_positions,
)
from profiler.formulas.memory import DTYPE_BYTES
from profiler.predict.training import estimate_training

FORMATS = ("table", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("estimate-training", help="training time and memory fit on a device",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", type=model, help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--hardware", required=True, type=hardware,
                        help="a shipped hardware profile name or a profile JSON path")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--sequences", type=integer(1, MAX_COUNT), help="training sequences per epoch")
    size.add_argument("--tokens", type=integer(1, MAX_COUNT),
                      help="training tokens per epoch (sequences = tokens / seq-len, rounded up)")
    parser.add_argument("--epochs", type=integer(1, MAX_COUNT), default=1)
    parser.add_argument("--seq-len", type=integer(), default=1024)
    parser.add_argument("--micro-batch", type=integer(), default=1)
    parser.add_argument("--grad-accum", type=integer(), default=1)
    parser.add_argument("--extra-params", type=integer(0, MAX_COUNT), default=0,
                        help="parameters trained alongside the model, e.g. 1e6 for a small policy network")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPE_BYTES))
    parser.add_argument("--prep-rate", type=number(0, low_open=True), default=1000.0,
                        help="data preparation (tokenising) rate, sequences/s (default 1000, an assumption)")
    parser.add_argument("--eval-sequences", type=integer(0, MAX_COUNT), default=0,
                        help="sequences evaluated after every epoch")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    arch = args.model.arch
    require_positions(arch, args.seq_len, "--seq-len")
    sequences = args.sequences if args.sequences is not None else -(-args.tokens // args.seq_len)
    report = estimate_training(arch, args.hardware, sequences, args.epochs, args.seq_len, args.micro_batch,
                               args.grad_accum, args.extra_params, args.dtype, args.prep_rate, args.eval_sequences)
    print(dumps(report) if args.format == "json" else render_table(require_finite(report)))
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
