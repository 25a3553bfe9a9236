"""`python -m profiler fit MODEL --hardware NAME | --memory SIZE`: the largest micro-batch, context and decoding
batch that fit (`profiler.fit`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from profiler.fit import MAX_SEARCH, fit, parse_bytes, peaks_by_batch
from profiler.formulas import memory as M
from profiler.hardware import load_profile
from profiler.render.tables import human, render_rows
from profiler.source import resolve

FORMATS = ("table", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("fit", help="the largest batch and context that fit in a device's memory",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--hardware", help="a hardware profile: its device kind, and its largest memory size unless "
                                           "--memory is given")
    parser.add_argument("--memory", help="the memory budget, e.g. 48GiB or 80GB (one of --hardware, --memory needed)")
    parser.add_argument("--seq-len", type=int, default=2048, help="training tokens per sequence (default 2048)")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(M.DTYPE_BYTES),
                        help="weights and activations; 16-bit means mixed precision (default bfloat16)")
    parser.add_argument("--optimizer", default="adamw", choices=sorted(M.OPTIMIZER_STATES))
    parser.add_argument("--autocast", choices=["bfloat16", "float16"],
                        help="train under torch.autocast with fp32 weights (use --dtype float32)")
    parser.add_argument("--device", choices=M.MEMORY_DEVICES,
                        help="optimizer implementation to assume (default: the profile's device, else cuda)")
    parser.add_argument("--new-tokens", type=int, default=256, help="tokens generated (default 256)")
    parser.add_argument("--decode-context", type=int, help="prompt length of the decoding batch (default seq-len)")
    parser.add_argument("--plot", help="write a PNG of each training phase's bytes against the micro-batch")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (args.hardware or args.memory):
        raise ValueError("fit needs --hardware NAME or --memory SIZE (or both)")
    arch = resolve(args.model).arch
    profile = load_profile(args.hardware) if args.hardware else None
    budget = parse_bytes(args.memory) if args.memory else profile.max_memory_bytes
    device = args.device or (profile.device_type if profile else "cuda")
    where = " of ".join(filter(None, [args.memory, profile.name if profile else None]))
    result = fit(arch, budget, args.seq_len, args.dtype, args.optimizer, device, args.new_tokens,
                 args.decode_context, args.autocast)
    result["memory_of"] = where
    if args.plot:
        from profiler.render.plots import plot_fit

        largest = max([answer["value"] for answer in result["training"].values()] + [1])
        batches = sorted({2**i for i in range(min(2 * largest, MAX_SEARCH).bit_length() + 1)})
        plot_fit(peaks_by_batch(arch, args.seq_len, args.dtype, args.optimizer, device, batches), batches, budget,
                 f"{arch.name}, {args.seq_len} tokens, {args.dtype}, in {where}", Path(args.plot))
        result["plot"] = args.plot
    print(json.dumps(result, indent=2) if args.format == "json" else render_table(result))
    return 0


def render_table(result: dict[str, Any]) -> str:
    w = result["workload"]
    rows = [{"question": f"training micro-batch of {w['seq_len']} tokens, recompute {name}",
             **_cells(answer, "sequences")} for name, answer in result["training"].items()]
    context = result["longest_context"]
    rows.append({"question": f"longest prompt, 1 sequence + {w['new_tokens']} new tokens", **_cells(context, "tokens")})
    rows.append({"question": f"decoding batch, {w['decode_context']}-token prompts + {w['new_tokens']} new tokens",
                 **_cells(result["decode_batch"], "sequences")})
    head = (f"{result['model']} in {human(result['budget_bytes'], 'bytes')} ({result['memory_of']}), {w['dtype']}, "
            f"{w['optimizer']}, {w['device']}'s optimizer path")
    notes = "\n".join(f"* {note}" for note in result["assumptions"])
    if context["limited_by"] == "max_position_embeddings":
        notes += f"\n* The longest prompt is the model's limit ({context['limit']:,} + new tokens), not memory's."
    return f"{head}\n\n{render_rows(rows, 'table')}\n\n{notes}"


def _cells(answer: dict[str, Any], unit: str) -> dict[str, str]:
    fits = answer["value"] > 0
    return {"largest": f"{answer['value']:,} {unit}" if fits else "none fits",
            "peak": human(answer["peak_bytes"], "bytes"), "set by": answer["phase"],
            "margin": human(answer["margin_bytes"], "bytes")}
