"""`python -m profiler compare`: predicted against measured time over a grid of (size, batch, seq, mode) on this
machine, with the calibration done in the same run (`profiler.checks.compare`).

Modes: forward, train, prefill (a prompt of --seq-lens tokens) and decode (seconds per token after a context of
--seq-lens tokens, the mean over --new-tokens steps)."""

from __future__ import annotations

import argparse
from pathlib import Path

from profiler.checks.compare import (
    CLOCKS,
    DECODE_TOKENS,
    DEFAULT_BATCHES,
    DEFAULT_SEQ_LENS,
    DEFAULT_SIZES,
    STATISTICS,
    calibrated_comparison,
    grid,
    positions_needed,
)
from profiler.commands.arguments import (
    MAX_REPEATS,
    MAX_THREADS,
    choices,
    device_name,
    dumps,
    integer,
    integers,
    models,
    require_finite,
    require_fresh_directory,
    require_positions,
)
from profiler.commands.settings import default_threads, torch_threads
from profiler.render.comparison import render_table, write_outputs
from profiler.workload import COMPARED_MODES

FORMATS = ("table", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="predicted vs measured time over a grid, calibrated in the run",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(DEFAULT_SIZES), type=models,
                        help="comma-separated zoo sizes, shipped config names or config paths")
    parser.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)), type=integers())
    parser.add_argument("--seq-lens", default=",".join(map(str, DEFAULT_SEQ_LENS)), type=integers())
    parser.add_argument("--modes", default=",".join(COMPARED_MODES), type=choices(COMPARED_MODES),
                        help=f"comma-separated, each one of {', '.join(COMPARED_MODES)} (default all)")
    parser.add_argument("--new-tokens", type=integer(), default=DECODE_TOKENS,
                        help=f"decoding steps timed per decode point (default {DECODE_TOKENS})")
    parser.add_argument("--device", default="cpu", type=device_name)
    parser.add_argument("--threads", type=integer(1, MAX_THREADS),
                        help="torch intra-op threads (default: 1 on the CPU device, else "
                             "torch's)")
    parser.add_argument("--repeats", type=integer(1, MAX_REPEATS), default=5,
                        help="timed repeats per point and per shape (default 5)")
    parser.add_argument("--warmup", type=integer(0, MAX_REPEATS), default=2)
    parser.add_argument("--statistic", default="min", choices=list(STATISTICS))
    parser.add_argument("--clock", default="auto", choices=("auto",) + CLOCKS,
                        help="auto: cpu on the CPU device with one thread, else wall; "
                             "wall: elapsed time; cpu: CPU time of this process (CPU device only; with --threads 1 "
                             "the time the work took, without the time other processes held the cores)")
    parser.add_argument("--out", default="compare_out", type=Path,
                        help="directory for the JSON, plots and calibrated profile: new or empty (one run each)")
    parser.add_argument("--overwrite", action="store_true", help="write into --out even if it holds files")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_fresh_directory("--out", args.out, args.overwrite)
    positions = positions_needed(args.modes, max(args.seq_lens), args.new_tokens)
    what = "--seq-lens" if positions == max(args.seq_lens) else "--seq-lens + --new-tokens + 1 (prefill, decode)"
    for source in args.sizes:
        require_positions(source.arch, positions, what)
    points = grid(args.sizes, args.batches, args.seq_lens, args.modes)
    with torch_threads(default_threads(args.threads, args.device)):
        report, profile = calibrated_comparison(points, args.device, args.clock, args.repeats, args.warmup,
                                                args.statistic, new_tokens=args.new_tokens)
    report = write_outputs(require_finite(report), profile, points, args.out)
    print(dumps(report) if args.format == "json" else render_table(report))
    return 0
