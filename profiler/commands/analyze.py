"""`python -m profiler analyze MODEL`: exact parameters, FLOPs and memory of a model, from its config alone.

The JSON output (`--format json`) is a stable interface documented in docs/profiler.md (`profiler.analysis`).
`--validate` checks every shipped config's analytic count against its published count instead
(`profiler.checks.published`); `--counted` adds the comparison with FLOPs counted on the real module
(`profiler.checks.validate`, which imports torch: only then).
"""

from __future__ import annotations

import argparse
from typing import Any

from profiler.analysis import analyze, training_budget
from profiler.checks.published import validate_published
from profiler.commands.arguments import (
    integer,
    model,
    number,
    positions_or_default,
    prompt_or_default,
    require_finite,
)
from profiler.formulas import flops as F
from profiler.formulas import memory as M
from profiler.render.analysis import FORMATS, render
from profiler.render.tables import render_rows

# NVIDIA H100 SXM dense BF16 Tensor Core peak, 989 TFLOP/s (NVIDIA H100 Tensor Core GPU datasheet).
DEFAULT_PEAK_TFLOPS = 989.0
DEFAULT_SEQ_LEN = 2048


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analyze", help="parameters, FLOPs and memory of a model from its config",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=model,
                        help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--batch", type=integer(), default=1, help="sequences per optimizer step (default 1)")
    parser.add_argument("--seq-len", type=integer(),
                        help=f"tokens per sequence (default {DEFAULT_SEQ_LEN}, or the model's max_position_embeddings "
                             f"if fewer); also generate_peak's prompt, which with --new-tokens must fit the "
                             f"positions (when --seq-len is not given, the prompt is shortened to fit)")
    parser.add_argument("--context", type=integer(),
                        help="KV-cache context for decode and inference memory: the decoded token sits at position "
                             "--context, so it must be below max_position_embeddings (default seq-len, or one less "
                             "where seq-len fills the positions)")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(M.DTYPE_BYTES),
                        help="weights/activations dtype; 16-bit means mixed precision (default bfloat16)")
    parser.add_argument("--optimizer", default="adamw", choices=sorted(M.OPTIMIZER_STATES))
    parser.add_argument("--grad-accum", type=integer(), default=1, help="micro-batches per step; must divide --batch")
    parser.add_argument("--recompute", default="none", choices=F.RECOMPUTE, help="activation recomputation")
    parser.add_argument("--attention-kernel", default="fused", choices=F.ATTENTION_KERNELS,
                        help="attention backward: fused kernels recompute the scores (default), math stores them")
    parser.add_argument("--device", default="cuda", choices=M.MEMORY_DEVICES,
                        help="whose default optimizer implementation the memory timeline assumes: single-tensor on "
                             "cpu and mps, foreach (a copy of the parameters) on cuda (default cuda)")
    parser.add_argument("--optimizer-implementation", choices=M.OPTIMIZER_IMPLEMENTATIONS,
                        help="the optimizer's torch implementation in the memory timeline: single_tensor (its worst "
                             "tensor twice plus the one before, as temporaries), foreach (a copy of the parameters) "
                             "or fused (none); default: --device's")
    parser.add_argument("--new-tokens", type=integer(), default=32,
                        help="tokens generated for generate_peak after a prompt of --seq-len tokens (default 32)")
    parser.add_argument("--autocast", choices=["bfloat16", "float16"],
                        help="the memory timeline's forward under torch.autocast (fp32 weights: use --dtype float32)")
    parser.add_argument("--no-master-weights", dest="master_weights", action="store_false",
                        help="pure 16-bit training in the memory timeline: a 16-bit --dtype without the fp32 master "
                             "copy, the optimizer's moments in 16 bits (torch's optimizers on 16-bit parameters)")
    parser.add_argument("--kv-dtype", choices=sorted(M.KV_DTYPE_BYTES),
                        help="KV cache storage for kv_cache and inference_peak (default --dtype)")
    parser.add_argument("--format", default="table", choices=FORMATS)
    budget = parser.add_argument_group("compute-optimal size for a budget (Hoffmann et al. 2022)")
    budget.add_argument("--training-budget", "--training_budget", type=number(0, low_open=True), metavar="USD",
                        help="dollar budget; prints the FLOPs it buys and the compute-optimal N and D")
    budget.add_argument("--price-per-hour", type=number(0, low_open=True), default=2.0,
                        help="USD per device-hour (default 2.0)")
    budget.add_argument("--peak-tflops", type=number(0, low_open=True), default=DEFAULT_PEAK_TFLOPS,
                        help=f"device peak TFLOP/s (default {DEFAULT_PEAK_TFLOPS:g}, H100 SXM dense BF16)")
    budget.add_argument("--mfu", type=number(0, 1, low_open=True), default=0.4,
                        help="model FLOPs utilisation in (0, 1] (default 0.4)")
    parser.add_argument("--validate", action="store_true",
                        help="compare every shipped config's analytic count with its published count; exit 1 on a mismatch")
    parser.add_argument("--counted", action="store_true",
                        help="also count the real module's FLOPs and compare (profiler validate's summary under "
                             "'validation'; --batch and --seq-len apply)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.validate:
        rows = validate_published()
        print(render_rows(rows, args.format))
        return 0 if all(row["match"] for row in rows) else 1
    if args.model is None and args.training_budget is None:
        raise ValueError("MODEL is required (a zoo size, a shipped config or a config.json), unless --validate or "
                         "--training-budget")
    report: dict[str, Any] = {}
    if args.model is not None:
        source = args.model
        given = args.seq_len
        args.seq_len = positions_or_default(source.arch, given, DEFAULT_SEQ_LEN, "--seq-len")
        # generate_peak runs --new-tokens past a prompt of --seq-len tokens: the two together must fit
        prompt = prompt_or_default(source.arch, given, args.seq_len, args.new_tokens, "--seq-len")
        # the decode figures add one token at position --context, after the cached ones
        args.context = prompt_or_default(source.arch, args.context, args.seq_len, 1, "--context",
                                         "the decoded token")
        report = analyze(source.arch, batch=args.batch, seq_len=args.seq_len, context=args.context,
                         dtype=args.dtype, optimizer=args.optimizer, grad_accum=args.grad_accum,
                         recompute=args.recompute, attention_kernel=args.attention_kernel, device=args.device,
                         new_tokens=args.new_tokens, kv_dtype=args.kv_dtype, autocast=args.autocast,
                         master_weights=args.master_weights, prompt=prompt,
                         optimizer_implementation=args.optimizer_implementation)
        if args.counted:
            from profiler.checks import validate  # imports torch, transformers and fvcore: only when asked

            report["validation"] = validate.summary(validate.validate(source, args.batch, args.seq_len))
    if args.training_budget is not None:
        report["training_budget"] = training_budget(args.training_budget, args.price_per_hour,
                                                    args.peak_tflops * 1e12, args.mfu)
    print(render(require_finite(report), args.format))
    return 0
