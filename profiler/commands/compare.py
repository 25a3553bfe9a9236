"""`python -m profiler compare`: predicted against measured time over a grid of (size, batch, seq, mode) on this
machine, with the calibration done in the same run (`profiler.checks.compare`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from profiler.checks.compare import (
    CLOCKS,
    DEFAULT_BATCHES,
    DEFAULT_SEQ_LENS,
    DEFAULT_SIZES,
    STATISTICS,
    calibrated_comparison,
    grid,
)
from profiler.commands.settings import default_threads, torch_threads
from profiler.render.comparison import render_table, write_outputs
from profiler.source import resolve
from profiler.workload import COMPARED_MODES

FORMATS = ("table", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="predicted vs measured time over a grid, calibrated in the run",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(DEFAULT_SIZES),
                        help="comma-separated zoo sizes, shipped config names or config paths")
    parser.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)))
    parser.add_argument("--seq-lens", default=",".join(map(str, DEFAULT_SEQ_LENS)))
    parser.add_argument("--modes", default=",".join(COMPARED_MODES), help="forward and/or train")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: 1 on the CPU device, else "
                                                    "torch's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per point and per shape (default 5)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--statistic", default="min", choices=list(STATISTICS))
    parser.add_argument("--clock", default="auto", choices=("auto",) + CLOCKS,
                        help="auto: cpu on the CPU device with one thread, else wall; "
                             "wall: elapsed time; cpu: CPU time of this process (CPU device only; with --threads 1 "
                             "the time the work took, without the time other processes held the cores)")
    parser.add_argument("--out", default="compare_out", help="directory for the JSON, plots and calibrated profile")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError as err:
        raise ValueError(f"{name}={text!r} must be comma-separated integers >= 1") from err
    if not values or min(values) < 1:
        raise ValueError(f"{name}={text!r} must be comma-separated integers >= 1")
    return values


def run(args: argparse.Namespace) -> int:
    sources = [resolve(name) for name in args.sizes.split(",")]
    points = grid(sources, _ints(args.batches, "batches"), _ints(args.seq_lens, "seq_lens"), args.modes.split(","))
    with torch_threads(default_threads(args.threads, args.device)):
        report, profile = calibrated_comparison(points, args.device, args.clock, args.repeats, args.warmup,
                                                args.statistic)
    report = write_outputs(report, profile, points, Path(args.out))
    print(json.dumps(report, indent=2) if args.format == "json" else render_table(report))
    return 0
