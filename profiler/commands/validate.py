"""`python -m profiler validate MODEL`: the analytic formulas against counts on the real module.

Component by component; `profiler.checks.validate`'s docstring says how each model is built and counted."""

from __future__ import annotations

import argparse
from typing import Any

from profiler.checks.validate import DEFAULT_TOLERANCE, DEVICES, validate
from profiler.commands.arguments import dumps, integer, model, number, require_finite, require_positions
from profiler.render.tables import render_rows

FORMATS = ("table", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validate", help="analytic formulas vs FLOPs counted on the real module",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", type=model, help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--batch", type=integer(), default=1, help="sequences (default 1)")
    parser.add_argument("--seq-len", type=integer(), default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--tolerance", type=number(0), default=DEFAULT_TOLERANCE,
                        help=f"largest relative error of a FLOP count (default {DEFAULT_TOLERANCE:g}); "
                             "parameters must match exactly")
    parser.add_argument("--device", default="meta", choices=DEVICES,
                        help="where dense models are built (default meta: no memory); cpu allocates random "
                             "weights and lets the counter read attention masks (sliding windows); MoE models "
                             "always run on cpu")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_positions(args.model.arch, args.seq_len, "--seq-len")
    result = validate(args.model, batch=args.batch, seq_len=args.seq_len, tolerance=args.tolerance,
                      device=args.device)
    print(dumps(result) if args.format == "json" else render_table(require_finite(result)))
    return 0 if result["passed"] else 1


def render_table(result: dict[str, Any]) -> str:
    header = [f"{result['model']} on {result['device']}: batch {result['batch']}, seq_len {result['seq_len']}; "
              f"{result['convention']}; tolerance {result['tolerance']:g}",
              "attention kernel of the backward formula: " + ", ".join(f"{k} {v or 'not compared'}"
                                                          for k, v in result["attention_kernel"].items())]
    header += [f"note: {note}" for note in result["notes"]]
    header += [f"unknown to {name}: {ops}" for name, ops in result["unknown_ops"].items() if ops]
    cells = [{"quantity": row["quantity"], "component": row["component"], "counter": row["counter"],
              "analytic": _number(row["analytic"]), "counted": _number(row["counted"]),
              "rel_error": "-" if row["rel_error"] is None else f"{row['rel_error']:.2e}",
              "status": row["status"], "note": row["note"]} for row in result["rows"]]
    verdict = f"max_rel_error {result['max_rel_error']:.2e}: {'passed' if result['passed'] else 'FAILED'}"
    return "\n".join(header) + "\n\n" + render_rows(cells, "table") + "\n\n" + verdict


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
