"""`python -m profiler fit MODEL --hardware NAME | --memory SIZE`: the largest micro-batch, context and decoding
batch that fit (`profiler.fit`)."""

from __future__ import annotations

import argparse
from typing import Any

from profiler.commands.arguments import (
    byte_size,
    dumps,
    hardware,
    integer,
    model,
    output_file,
    positions_or_default,
    prompt_or_default,
    require_finite,
)
from profiler.fit import MAX_SEARCH, fit, peaks_by_batch
from profiler.formulas import memory as M
from profiler.render.tables import human, render_rows

FORMATS = ("table", "json")
DEFAULT_SEQ_LEN = 2048


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("fit", help="the largest batch and context that fit in a device's memory",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", type=model, help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--hardware", type=hardware,
                        help="a hardware profile: its device kind, and its largest memory size unless "
                             "--memory is given")
    parser.add_argument("--memory", type=byte_size,
                        help="the memory budget, e.g. 48GiB or 80GB (one of --hardware, --memory needed)")
    parser.add_argument("--seq-len", type=integer(), help=f"training tokens per sequence (default {DEFAULT_SEQ_LEN}, "
                                                          f"or the model's max_position_embeddings if fewer)")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(M.DTYPE_BYTES),
                        help="weights and activations; 16-bit means mixed precision (default bfloat16)")
    parser.add_argument("--optimizer", default="adamw", choices=sorted(M.OPTIMIZER_STATES))
    parser.add_argument("--autocast", choices=["bfloat16", "float16"],
                        help="train under torch.autocast with fp32 weights (use --dtype float32)")
    parser.add_argument("--device", choices=M.MEMORY_DEVICES,
                        help="optimizer implementation to assume (default: the profile's device, else cuda)")
    parser.add_argument("--new-tokens", type=integer(), default=256, help="tokens generated (default 256)")
    parser.add_argument("--decode-context", type=integer(),
                        help="prompt length of the decoding batch (default seq-len, or fewer where seq-len + "
                             "new-tokens would run past the model's max_position_embeddings)")
    parser.add_argument("--plot", type=output_file,
                        help="write a PNG of each training phase's bytes against the micro-batch")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (args.hardware or args.memory):
        raise ValueError("fit needs --hardware NAME or --memory SIZE (or both)")
    arch, profile = args.model.arch, args.hardware
    args.seq_len = positions_or_default(arch, args.seq_len, DEFAULT_SEQ_LEN, "--seq-len")
    # default: the training length, shortened where the new tokens would run past the end
    args.decode_context = prompt_or_default(arch, args.decode_context, args.seq_len, args.new_tokens,
                                            "--decode-context")
    budget = args.memory or profile.max_memory_bytes
    device = args.device or (profile.device_type if profile else "cuda")
    where = " of ".join(filter(None, [human(args.memory, "bytes") if args.memory else None,
                                      profile.name if profile else None]))
    result = fit(arch, budget, args.seq_len, args.dtype, args.optimizer, device, args.new_tokens,
                 args.decode_context, args.autocast)
    result["memory_of"] = where
    if args.plot:
        from profiler.render.plots import plot_fit

        largest = max([answer["value"] for answer in result["training"].values()] + [1])
        batches = sorted({2**i for i in range(min(2 * largest, MAX_SEARCH).bit_length() + 1)})
        peaks = peaks_by_batch(arch, args.seq_len, args.dtype, args.optimizer, device, batches, args.autocast)
        plot_fit(peaks, batches, budget, f"{arch.name}, {args.seq_len} tokens, {args.dtype}, in {where}", args.plot)
        result["plot"] = str(args.plot)
    print(dumps(result) if args.format == "json" else render_table(require_finite(result)))
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
