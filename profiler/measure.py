"""`python -m profiler measure MODEL`: time a real model on this machine the way a benchmark should.

Warm-up, N synchronised repeats, mean ± std and p50/p95/p99, tokens/s and sequences/s, a batch sweep tolerant of
out-of-memory batches, peak memory, model size, an energy estimate and the slowest modules, in modes forward,
train and generate. The work is done by `profiler.timing.harness`, imported when the command runs so that other
commands (`analyze`) never import torch. The JSON output is a stable interface documented in docs/measuring.md.
"""

from __future__ import annotations

import argparse
import json

FORMATS = ("table", "json")
MODES = ("forward", "train", "generate")
DTYPES = ("bfloat16", "float16", "float32")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("measure", help="time a real model on this machine (benchmark harness)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a zoo size name or a HF-style config.json path")
    parser.add_argument("--mode", default="forward", choices=MODES)
    parser.add_argument("--batch", type=int, default=1, help="sequences per call (default 1)")
    parser.add_argument("--batch-sweep", help="comma-separated batch sizes, e.g. 1,2,4,8 (overrides --batch)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence / prompt (default 128)")
    parser.add_argument("--new-tokens", type=int, default=32, help="generate: tokens to decode (default 32)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls (default 10)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--hardware", help="hardware profile (name or JSON) for the energy estimate")
    parser.add_argument("--top", type=int, default=10, help="modules in the breakdown (0: no breakdown)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profiler.timing.harness import measure, parse_batches, render_table

    report = measure(args.model, mode=args.mode, batches=parse_batches(args.batch_sweep, args.batch),
                     seq_len=args.seq_len, new_tokens=args.new_tokens, device=args.device, dtype=args.dtype,
                     warmup=args.warmup, repeats=args.repeats, threads=args.threads, hardware=args.hardware,
                     top=args.top, seed=args.seed, progress=None)
    print(json.dumps(report, indent=2) if args.format == "json" else render_table(report))
    return 0
