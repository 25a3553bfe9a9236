"""`python -m profiler predict MODEL --hardware PROFILE`: time of a forward, train or decode step on a device.

Op by op on a roofline of the hardware profile (`profiler.predict.roofline`)."""

from __future__ import annotations

import argparse
from typing import Any

from profiler.commands.arguments import MAX_COUNT, dumps, hardware, integer, model, require_finite, require_positions
from profiler.formulas.memory import DTYPE_BYTES
from profiler.hardware import ESTIMATES
from profiler.predict.ops import ATTENTION_KERNELS
from profiler.predict.roofline import predict
from profiler.workload import MATMUL_PRECISIONS, OPTIMIZER_IMPLEMENTATIONS, PREDICTED_MODES, Workload

FORMATS = ("table", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="predicted time of a forward/train/decode step on a device",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", type=model, help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--hardware", required=True, type=hardware,
                        help="a shipped hardware profile name or a profile JSON path")
    parser.add_argument("--batch", type=integer(), default=1, help="sequences (default 1)")
    parser.add_argument("--seq-len", type=integer(), default=512,
                        help="tokens per sequence; for decode, the context already cached (default 512)")
    parser.add_argument("--mode", default="forward", choices=PREDICTED_MODES)
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPE_BYTES),
                        help="weights and activations dtype (default float32)")
    parser.add_argument("--estimate", default="likely", choices=list(ESTIMATES),
                        help="which end of the calibrated spread (default likely = median)")
    parser.add_argument("--attention-kernel", default="fused", choices=ATTENTION_KERNELS,
                        help="fused (flash-style, default) or math (scores materialised, every pair computed)")
    parser.add_argument("--dropout", action="store_true",
                        help="the module in training mode: its dropouts run at the config's probabilities "
                             "(forward and train; default off)")
    parser.add_argument("--optimizer", default=None, choices=OPTIMIZER_IMPLEMENTATIONS,
                        help="AdamW implementation for train (default: the device's, single_tensor on cpu and mps, "
                             "foreach on cuda; foreach and fused need a cuda profile)")
    parser.add_argument("--no-master-weights", dest="master_weights", action="store_false",
                        help="pure 16-bit training: the optimizer on 16-bit parameters and moments (default: fp32 "
                             "master weights and moments)")
    parser.add_argument("--matmul-precision", default="highest", choices=MATMUL_PRECISIONS,
                        help="torch.set_float32_matmul_precision of a float32 run: highest (default, fp32 products) "
                             "or high (TF32 products on a cuda profile, at its tfloat32 rates)")
    parser.add_argument("--top", type=integer(0, MAX_COUNT), default=12,
                        help="ops listed in the table, slowest first (default 12)")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    workload = Workload(args.mode, args.batch, args.seq_len, args.dtype, device=args.hardware.device_type,
                        dropout=args.dropout, optimizer=args.optimizer, master_weights=args.master_weights,
                        matmul_precision=args.matmul_precision)
    arch = args.model.arch
    if args.mode == "decode":  # the new token sits at position seq_len, after the cached context
        require_positions(arch, args.seq_len + 1, "--seq-len (the cached context) + 1")
    else:
        require_positions(arch, args.seq_len, "--seq-len")
    result = predict(arch, args.hardware, workload, args.estimate, args.attention_kernel)
    print(dumps(result) if args.format == "json" else render_table(require_finite(result), args.top))
    return 0


def render_table(result: dict[str, Any], top: int) -> str:
    w = result["workload"]
    lines = [f"{result['model']} on {result['hardware']}: {w['mode']}, batch {w['batch']}, seq/context "
             f"{w['seq_len']}, {w['dtype']}{' (TF32 products)' if w['matmul_precision'] == 'high' else ''} "
             f"({result['estimate']})",
             f"  predicted {result['seconds'] * 1e3:,.2f} ms   {result['tokens_per_s']:,.0f} tokens/s   "
             f"MFU {result['mfu']:.1%}   mostly {result['bound']}-bound   {result['launches']:,} launches",
             "  by phase: " + ", ".join(f"{k} {v * 1e3:,.2f} ms" for k, v in result["seconds_by_phase"].items() if v),
             "", f"  {'op':<36} {'phase':<9} {'x':>4} {'GFLOP':>9} {'MB':>9} {'ms':>9} {'share':>6}  bound"]
    for row in sorted(result["ops"], key=lambda r: -r["seconds"])[:top]:
        lines.append(f"  {row['name']:<36} {row['phase']:<9} {row['repeats']:>4} {row['flops'] / 1e9:>9.3f} "
                     f"{row['bytes'] / 1e6:>9.2f} {row['seconds'] * 1e3:>9.3f} "
                     f"{row['seconds'] / result['seconds']:>6.1%}  {row['bound']}")
    return "\n".join(lines)
