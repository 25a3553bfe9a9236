"""`python -m profiler report MODEL`: the main job — one readable report of a model on this machine.

It joins what the other commands establish, each from its own module:

1. the analytic numbers (`profiler.analyze`): parameters, FLOPs per pass, memory;
2. their check against FLOPs counted on the real module (`profiler.validate`: our counter, torch's
   FlopCounterMode, fvcore);
3. measured and predicted times on the current device (`profiler.compare`: the device is calibrated in the same
   run, a forward pass and a training step are timed with the `measure` harness and predicted op by op).

Output: markdown (default) or JSON; `--output-dir` also writes report.md, report.json, and compare's plots and
calibrated profile. `--no-timing` skips step 3 (seconds instead of minutes).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from profiler.analyze import analyze, human, render_rows
from profiler.arch import load_arch

FORMATS = ("markdown", "json")
DTYPE = "float32"  # the timed runs are fp32, so the analytic numbers are too
MODES = ("forward", "train")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="the main job: analytic numbers, validation, measured and "
                                                  "predicted time on this device", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a zoo size name or a HF-style config.json path")
    parser.add_argument("--batch", type=int, default=1, help="sequences per step (default 1)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    parser.add_argument("--threads", type=int, help="torch threads (default: 1 on the CPU, as compare)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per step and shape (default 5)")
    parser.add_argument("--no-timing", action="store_true", help="skip calibration, measurement and prediction")
    parser.add_argument("--output-dir", help="also write report.md, report.json, plots and the calibrated profile")
    parser.add_argument("--format", default="markdown", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = report(args.model, args.batch, args.seq_len, not args.no_timing, args.device, args.threads,
                    args.repeats, Path(args.output_dir) if args.output_dir else None)
    text = render_markdown(result)
    if args.output_dir:
        out = Path(args.output_dir)
        (out / "report.md").write_text(text + "\n", encoding="utf-8")
        (out / "report.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2) if args.format == "json" else text)
    return 0


def report(model: str, batch: int = 1, seq_len: int = 128, timing: bool = True, device: str = "cpu",
           threads: int | None = None, repeats: int = 5, output_dir: Path | None = None) -> dict[str, Any]:
    """The report as plain data: `analysis` (analyze's document), `validation` (validate's summary) and, with
    `timing`, `timing` (compare's document for a forward pass and a training step at this batch and length)."""
    from profiler import validate  # imports torch: only here, so `analyze` stays torch-free

    analysis = analyze(load_arch(model), batch=batch, seq_len=seq_len, dtype=DTYPE)
    result: dict[str, Any] = {"model": analysis["model"], "analysis": analysis,
                              "validation": validate.summary(validate.validate(model, batch, seq_len))}
    if timing:
        from profiler.compare import calibrated_comparison

        points = [(model, mode, batch, seq_len) for mode in MODES]
        if output_dir is None:
            with tempfile.TemporaryDirectory() as scratch:
                result["timing"] = calibrated_comparison(points, Path(scratch), device, threads, repeats=repeats)
            result["timing"]["files"] = {}
        else:
            result["timing"] = calibrated_comparison(points, output_dir, device, threads, repeats=repeats)
    return result


# ---------------------------------------------------------------------------------------------- markdown
def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Rows of cells under `header` as Markdown table lines (analyze's renderer)."""
    return render_rows([dict(zip(header, row)) for row in rows], "markdown").splitlines()


def render_markdown(result: dict[str, Any]) -> str:
    analysis = result["analysis"]
    w, params, flops, memory = analysis["workload"], analysis["params"], analysis["flops"], analysis["memory"]
    lines = [f"# {result['model']} ({analysis['model_type']})", "",
             f"Batch {w['batch']} × {w['seq_len']} tokens, {w['dtype']}, AdamW. FLOPs count 2 per multiply-add "
             "(matrix products); attention is given dense (every S×S pair) and causal (unmasked pairs only).", ""]

    lines += ["## Parameters", ""]
    lines += _table(["quantity", "exact", "human"],
                    [[key, f"{params[key]:,}", human(params[key], "parameters")] for key in
                     ("total", "active", "embedding", "non_embedding", "active_non_embedding")])

    lines += ["", "## FLOPs per step", ""]
    rows = [[name, f"{flops[key]:,}", f"{flops[key + '_causal']:,}"] for name, key in
            (("forward", "forward"), ("backward", "backward"), ("training step", "train_step"))]
    lines += _table(["pass", "dense", "causal"], rows)
    lines += ["", f"6ND = {flops['six_nd']:,}; prefill {flops['prefill']:,}; one decoded token at this context "
                  f"{flops['decode_per_token']:,}."]

    lines += ["", "## Memory", ""]
    lines += _table(["quantity", "bytes", "human"],
                    [[key, f"{value:,}", human(value, "bytes")] for key, value in memory.items() if value])

    check = result["validation"]
    verdict = "passed" if check["passed"] else "FAILED"
    lines += ["", f"## Validation against counted FLOPs: {verdict}, max relative error {check['max_rel_error']:.2e}",
              "", f"Counted on the {check['device']} device; {check['convention']}; tolerance {check['tolerance']:g}."]
    lines += [f"Note: {note}" for note in check["notes"]]
    lines += [""] + _table(
        ["quantity", "counter", "analytic", "counted", "status"],
        [[row["quantity"], row["counter"], f"{row['analytic']:,}",
          "-" if row["counted"] is None else f"{row['counted']:,}", row["status"]]
         for row in check["rows"] if row["component"] == "total"])

    if "timing" in result:
        lines += ["", *_timing_markdown(result["timing"])]
    lines += ["", "## Assumptions", ""] + [f"- {item}" for item in analysis["assumptions"]]
    return "\n".join(lines)


def _timing_markdown(timing: dict[str, Any]) -> list[str]:
    env = timing["environment"]
    device = env.get("device", "?")
    device = device.get("name", "?") if isinstance(device, dict) else device
    lines = ["## Time on this device: measured and predicted", "",
             f"Device {device}, {env.get('threads', '?')} thread(s), {env.get('clock', '?')} clock, torch "
             f"{env.get('torch', '?')}. Calibrated in this run; measured = {timing['statistic']} of the repeats; "
             "predicted = the per-op roofline of `profiler predict` (docs/estimating.md).", ""]
    rows = []
    for r in timing["rows"]:
        memory = f"{r['memory']['error']:+.1%}" if "memory" in r else "-"
        rows.append([r["mode"], f"{r['measured_s'] * 1e3:,.2f}", f"{r['predicted_s'] * 1e3:,.2f}", f"{r['error']:+.1%}",
                     r["bound"], f"{r['mfu']:.1%}", memory])
    lines += _table(["step", "measured ms", "predicted ms", "error", "bound", "MFU", "peak memory error"], rows)
    lines += ["", "Error = (predicted − measured) ÷ measured. MFU = matmul FLOPs (causal) ÷ (time × the fastest matmul "
                  "rate calibrated here). Peak memory: weights + gradients + AdamW + the activation estimate against the "
                  "measured peak of live tensors, which also holds transient buffers the formula leaves out "
                  "(vocabulary-sized gradient tables, optimizer temporaries)."]
    files = timing.get("files") or {}
    if files:
        lines += ["", "Files: " + ", ".join(f"{name} `{path}`" for name, path in files.items())]
    return lines
