"""`python -m profiler ops MODEL`: predicted against `torch.profiler`-measured time per op category of one step.

The predictor's op list (`predict`) and the aten ops of the real step (forward, train, prefill or one decode
step) mapped into the same
categories — matmul, attention, norm, elementwise, embedding, dispatch, loss, optimizer, copy, framework — with the
error per category and the totals beside the same step timed without the profiler (`profiler.checks.ops`; the
categories are documented there and in docs/measuring.md). Without `--hardware` the device is calibrated first,
as `compare` does (tens of seconds).
"""

from __future__ import annotations

import argparse

from profiler.checks.compare import positions_needed
from profiler.checks.ops import CLOCKS, MODES, op_comparison
from profiler.commands.arguments import (
    MAX_REPEATS,
    MAX_THREADS,
    device_name,
    dumps,
    hardware,
    integer,
    model,
    require_finite,
    require_positions,
)
from profiler.commands.settings import default_threads, torch_threads
from profiler.hardware import ESTIMATES
from profiler.render.ops import render_ops_table
from profiler.workload import DECODE_TOKENS

FORMATS = ("table", "json")
DTYPES = ("float32", "bfloat16", "float16")
MAX_TOP = 50


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ops", help="predicted vs torch.profiler-measured time per op category",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", type=model, help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--mode", default="forward", choices=MODES)
    parser.add_argument("--batch", type=integer(), default=1, help="sequences per step (default 1)")
    parser.add_argument("--seq-len", type=integer(), default=128,
                        help="tokens per sequence; prefill: the prompt; decode: the context already cached (default 128)")
    parser.add_argument("--new-tokens", type=integer(), default=DECODE_TOKENS,
                        help=f"decode: steps timed, one generate of N + 1 tokens less the prefill (default {DECODE_TOKENS})")
    parser.add_argument("--device", default="cpu", type=device_name,
                        help="cpu, cuda or cuda:N (default cpu; torch.profiler has no per-op MPS times)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES, help="weights and activations (default float32)")
    parser.add_argument("--threads", type=integer(1, MAX_THREADS),
                        help="torch threads (default: 1 on the CPU, as compare)")
    parser.add_argument("--clock", default="auto", choices=CLOCKS,
                        help="timing clock of the unprofiled step (auto: cpu with 1 CPU thread, else wall)")
    parser.add_argument("--hardware", type=hardware,
                        help="hardware profile to predict with (default: calibrate this device first)")
    parser.add_argument("--estimate", default="likely", choices=list(ESTIMATES),
                        help="which end of the calibrated spread (default likely = median)")
    parser.add_argument("--repeats", type=integer(1, MAX_REPEATS), default=3,
                        help="profiled and unprofiled steps each (default 3)")
    parser.add_argument("--warmup", type=integer(0, MAX_REPEATS), default=2, help="untimed steps first (default 2)")
    parser.add_argument("--top", type=integer(0, MAX_TOP), default=2,
                        help="slowest ops named per category on either side (default 2)")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    positions = positions_needed([args.mode], args.seq_len, args.new_tokens)
    require_positions(args.model.arch, positions,
                      "--seq-len" if positions == args.seq_len else "--seq-len + --new-tokens + 1 (prefill, decode)")
    with torch_threads(default_threads(args.threads, args.device)):
        result = op_comparison(args.model, args.mode, args.batch, args.seq_len, args.device, args.dtype, args.clock,
                               args.repeats, args.warmup, args.hardware, args.estimate, args.top,
                               args.new_tokens)
    print(dumps(result) if args.format == "json" else render_ops_table(require_finite(result)))
    return 0
