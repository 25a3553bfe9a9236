"""Command lines `complexity-train` and `complexity-train-tokenizer` (also scripts/train_complexity.py and
scripts/train_tokenizer.py). A flag outside its range is an argparse error naming the flag: one line on stderr,
exit status 2. Any other ValueError (data, files, checkpoints, a busy output directory) is one line on stderr and
exit status 2; a diverged run or an operating-system error (a full disk) one line and exit status 1."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields

from complexity.config import ROUTING_MODES, SIZES
from complexity.training.data import resolve_text_files, token_counts
from complexity.training.tokenizer import expert_shares, id_frequency_spearman, save_tokenizer, train_tokenizer
from complexity.training.train import (
    DISTRIBUTED_MODES,
    PRECISIONS,
    NonFiniteLossError,
    SettingError,
    TrainConfig,
    train,
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors as one line ("prog: error: argument --flag: ...", exit status 2), no usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def train_parser() -> argparse.ArgumentParser:
    d = {f.name: f.default for f in fields(TrainConfig)}
    p = OneLineParser(prog="complexity-train", description="Train a Complexity model on local text.")
    p.add_argument("--data", nargs="+", required=True, help="text files and/or directories (read recursively)")
    p.add_argument("--output-dir", required=True, help="tokenizer, token file, checkpoints and metrics.jsonl go here")
    p.add_argument("--size", default=d["size"], choices=sorted(SIZES), help="zoo size (default %(default)s)")
    p.add_argument("--config", help="JSON file of ComplexityConfig fields applied over --size")
    p.add_argument("--tokenizer", help="tokenizer.json; default: reuse or train <output-dir>/tokenizer.json")
    p.add_argument("--vocab-size", type=int, default=d["vocab_size"], help="of a tokenizer trained here")
    p.add_argument("--seq-len", type=int, default=d["seq_len"])
    p.add_argument("--micro-batch-size", type=int, default=d["micro_batch_size"], help="sequences per process")
    p.add_argument("--grad-accum", type=int, default=d["grad_accum"], help="micro-batches per optimizer step")
    p.add_argument("--max-steps", type=int, default=d["max_steps"], help="optimizer steps")
    p.add_argument("--lr", type=float, default=d["lr"], help="peak learning rate")
    p.add_argument("--min-lr-ratio", type=float, default=d["min_lr_ratio"], help="final lr / peak lr")
    p.add_argument("--warmup-steps", type=int, default=d["warmup_steps"])
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"], help="on matrices only")
    p.add_argument("--grad-clip", type=float, default=d["grad_clip"], help="max gradient L2 norm; 0 = off")
    p.add_argument("--eval-interval", type=int, default=d["eval_interval"], help="steps between evaluations")
    p.add_argument("--eval-batches", type=int, default=d["eval_batches"])
    p.add_argument("--eval-fraction", type=float, default=d["eval_fraction"], help="share of sequences held out")
    p.add_argument("--save-interval", type=int, default=d["save_interval"], help="steps between checkpoints")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--precision", default=d["precision"], choices=PRECISIONS)
    p.add_argument("--distributed", default=d["distributed"], choices=DISTRIBUTED_MODES,
                   help="ddp or fsdp: launch with torchrun")
    p.add_argument("--resume", action="store_true", help="continue from <output-dir>/checkpoints/latest")
    p.add_argument("--peak-tflops", type=float, help="peak bf16/fp32 TFLOP/s of one device, for MFU")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def tokenizer_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="complexity-train-tokenizer",
                                description="Train a byte-level BPE tokenizer and measure what routing by id gives.")
    p.add_argument("--data", nargs="+", required=True, help="text files and/or directories (read recursively)")
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--output", default="tokenizer.json", help="where to write tokenizer.json")
    p.add_argument("--num-experts", type=int, default=4, help="experts for the routing shares")
    return p


def train_main(argv: Sequence[str] | None = None) -> int:
    parser = train_parser()
    args = parser.parse_args(argv)
    try:
        cfg = TrainConfig(**vars(args))
    except SettingError as err:
        parser.error(f"argument --{err.field.replace('_', '-')}: {err}")
    return _run(lambda: _train(cfg))


def tokenizer_main(argv: Sequence[str] | None = None) -> int:
    args = tokenizer_parser().parse_args(argv)
    return _run(lambda: _train_tokenizer(args))


def _train(cfg: TrainConfig) -> int:
    result = train(cfg)
    if not _is_main_process():
        return 0
    for step, loss in result.eval_losses.items():
        print(f"step {step}: held-out loss {loss:.4f} nats/token")
    print(f"checkpoint: {result.checkpoint}")
    return 0


def _train_tokenizer(args: argparse.Namespace) -> int:
    files = resolve_text_files(args.data)
    tokenizer = train_tokenizer(files, args.vocab_size)
    save_tokenizer(tokenizer, args.output)
    counts = token_counts(files, tokenizer)
    print(f"wrote {args.output}: {tokenizer.get_vocab_size()} tokens, {int(counts.sum()):,} tokens in "
          f"{len(files)} files")
    print(f"Spearman correlation of token id with frequency: {id_frequency_spearman(counts):+.3f} "
          "(-1: lower ids always more frequent)")
    for routing in ROUTING_MODES:
        shares = expert_shares(counts, args.num_experts, routing)
        print(f"share of tokens per expert, {routing:6s} routing: " + " ".join(f"{s:6.1%}" for s in shares))
    return 0


def _is_main_process() -> bool:
    """True unless torchrun started this process with a rank other than 0."""
    return os.environ.get("RANK", "0") == "0"


def _run(command: Callable[[], int]) -> int:
    logging.basicConfig(level=logging.INFO if _is_main_process() else logging.WARNING, format="%(message)s")
    try:
        return command()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (NonFiniteLossError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

