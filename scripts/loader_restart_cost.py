"""What an evaluation that restarts its DataLoaders costs on the host, outside the model (CPU seconds of wall time).

    python scripts/loader_restart_cost.py [--workers 0 4] [--resident-gib 0 2] [--repeats 15]

A training loop that evaluates with `for batch in loader: ... break` creates a new iterator of each loader every
time, and with `num_workers > 0` each new iterator forks that many worker processes, and the `break` joins them
again. The LLMs-from-scratch training-speed scripts do this for a train and a validation loader
(`num_workers=4`) at every evaluation, inside the interval they time. This script times exactly that:
one batch drawn from each of two loaders of token-id tensors (350 and 40 sequences of 1024 ids, batch 8, the
train loader shuffled), nothing else. Forking copies the parent's page tables, so the cost grows with the
parent's resident memory: `--resident-gib` allocates and touches that much first (a training process holds the
framework, its data and, on a GPU host, the CUDA libraries).

Control: with `--workers 0` the same loop draws the batches in the parent and should cost well under a millisecond,
so what the other rows show is the workers' start and stop. Prints min / median / max over `--repeats`
evaluations, in ms, per setting.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, Dataset

SEQUENCE, VOCAB, BATCH = 1024, 50257, 8


class TokenWindows(Dataset):
    """`count` (input, target) pairs of random token ids, `SEQUENCE` long: a text dataset already tokenised."""

    def __init__(self, count: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.pairs = [(torch.randint(0, VOCAB, (SEQUENCE,), generator=generator),
                       torch.randint(0, VOCAB, (SEQUENCE,), generator=generator)) for _ in range(count)]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pairs[index]


def first_batch_seconds(loader: DataLoader) -> float:
    """Seconds to draw one batch from a new iterator of `loader` and drop it (workers started, then joined)."""
    start = time.perf_counter()
    for _ in loader:
        break
    return time.perf_counter() - start


def evaluation_seconds(workers: int, repeats: int) -> list[float]:
    """One evaluation's loader cost, `repeats` times: a batch from a shuffled train loader and from a validation
    loader, each with `workers` worker processes."""
    train = DataLoader(TokenWindows(350), batch_size=BATCH, shuffle=True, drop_last=True, num_workers=workers)
    validation = DataLoader(TokenWindows(40), batch_size=BATCH, shuffle=False, num_workers=workers)
    first_batch_seconds(train), first_batch_seconds(validation)  # warm-up
    return [first_batch_seconds(train) + first_batch_seconds(validation) for _ in range(repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4], help="num_workers settings to time")
    parser.add_argument("--resident-gib", type=float, nargs="+", default=[0, 2],
                        help="GiB of touched memory the parent holds while forking (one row each)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if args.repeats < 1 or any(w < 0 for w in args.workers) or any(g < 0 for g in args.resident_gib):
        parser.error("--repeats must be >= 1, --workers and --resident-gib >= 0")
    print("resident GiB  workers  per evaluation (2 loaders) ms: min / median / max")
    for gib in args.resident_gib:
        ballast = torch.ones(int(gib * 2**30) // 4)  # ones() writes every page: resident, not just reserved
        for workers in args.workers:
            seconds = evaluation_seconds(workers, args.repeats)
            print(f"{gib:12.1f}  {workers:7d}  {min(seconds) * 1e3:.1f} / {statistics.median(seconds) * 1e3:.1f} / "
                  f"{max(seconds) * 1e3:.1f}")
        del ballast


if __name__ == "__main__":
    main()
