"""`python -m profiler report MODEL`: the main job — one readable report of a model on this machine.

Analytic numbers, their check against FLOPs counted on the real module, and measured against predicted time
(forward, train, prefill and decode at --batch and --seq-len) on this device (`profiler.checks.report`). Output:
markdown (default) or JSON; `--output-dir` also writes report.md, report.json, and compare's plots and calibrated
profile. `--no-timing` skips the timing (seconds, not minutes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from profiler.checks.compare import DECODE_TOKENS, positions_needed
from profiler.checks.report import report
from profiler.commands.arguments import (
    MAX_REPEATS,
    MAX_THREADS,
    device_name,
    dumps,
    integer,
    model,
    require_finite,
    require_fresh_directory,
    require_positions,
)
from profiler.commands.settings import default_threads, torch_threads
from profiler.render.comparison import write_outputs
from profiler.render.plots import plot_memory_timeline
from profiler.render.report import render_markdown
from profiler.workload import COMPARED_MODES

FORMATS = ("markdown", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="the main job: analytic numbers, validation, measured and "
                                                  "predicted time on this device", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=model, help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--batch", type=integer(), default=1, help="sequences per step (default 1)")
    parser.add_argument("--seq-len", type=integer(), default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--device", default="cpu", type=device_name, help="cpu, cuda, cuda:N or mps (default cpu)")
    parser.add_argument("--threads", type=integer(1, MAX_THREADS),
                        help="torch threads (default: 1 on the CPU, as compare)")
    parser.add_argument("--repeats", type=integer(1, MAX_REPEATS), default=5,
                        help="timed repeats per step and shape (default 5)")
    parser.add_argument("--no-timing", action="store_true", help="skip calibration, measurement and prediction")
    parser.add_argument("--output-dir", type=Path, help="also write report.md, report.json, plots and the calibrated "
                                                        "profile here: a new or empty directory (one run each)")
    parser.add_argument("--overwrite", action="store_true", help="write into --output-dir even if it holds files")
    parser.add_argument("--format", default="markdown", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = args.output_dir
    if out is not None:
        require_fresh_directory("--output-dir", out, args.overwrite)
    if args.no_timing:
        require_positions(args.model.arch, args.seq_len, "--seq-len")
    else:  # the timing generates DECODE_TOKENS + 1 tokens after the prompt
        require_positions(args.model.arch, positions_needed(list(COMPARED_MODES), args.seq_len),
                          f"--seq-len + {DECODE_TOKENS + 1} generated tokens (the timing's decode; --no-timing: "
                          "--seq-len alone)")
    with torch_threads(default_threads(args.threads, args.device)):
        result, profile, points = report(args.model, args.batch, args.seq_len, not args.no_timing,
                                         args.device, args.repeats)
    require_finite(result)
    if "timing" in result:
        result["timing"] = (write_outputs(result["timing"], profile, points, out) if out is not None
                            else {**result["timing"], "files": {}})
    text = render_markdown(result)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        train = next((row for row in result.get("timing", {}).get("rows", []) if row["mode"] == "train"), {})
        measured = train.get("memory", {}).get("measured_phase_peak_bytes", {})
        plot_memory_timeline(result["analysis"]["memory"]["timeline"], measured,
                             f"{result['model']}: a training step, batch {args.batch} x {args.seq_len} tokens",
                             out / "memory_timeline.png")
        (out / "report.md").write_text(text + "\n", encoding="utf-8")
        (out / "report.json").write_text(dumps(result) + "\n", encoding="utf-8")
    print(dumps(result) if args.format == "json" else text)
    return 0
