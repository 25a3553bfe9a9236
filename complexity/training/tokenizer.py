"""Byte-level BPE tokenizer (the `tokenizers` library) and the statistics that range routing relies on.

Byte-level BPE (Radford et al. 2019, GPT-2 §2.2) starts from the 256 byte values, so every UTF-8 string encodes and
decodes back exactly; merges are learned from the training text. Three special tokens take ids 0, 1, 2:
end-of-text (between documents), pad and start-of-text.

Range routing sends id `i` to expert `i * E // V`, which balances the experts only when token frequency does not
depend on the id. BPE gives low ids to the bytes and the earliest (most frequent) merges, so frequency tends to
fall with the id; `id_frequency_spearman` and `expert_shares` measure how much, on real text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from complexity.atomic import write_atomically
from complexity.config import ROUTING_MODES
from complexity.core.token_routed_mlp import expert_ids
from complexity.inputs import require_int

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|startoftext|>"
SPECIAL_TOKENS = (EOS_TOKEN, PAD_TOKEN, BOS_TOKEN)  # ids 0, 1, 2
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)  # the byte alphabet plus the special tokens
TOKENIZER_NAME = "tokenizer.json"


def train_tokenizer(files: Sequence[str | os.PathLike], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer of at most `vocab_size` tokens learned from UTF-8 text files.

    No prefix space is added and no text is normalised, so `decode(encode(text)) == text` for every string.
    """
    require_int("vocab_size", vocab_size, minimum=MIN_VOCAB_SIZE, note="256 bytes + specials")
    if not files:
        raise ValueError("files must name at least one text file to train the tokenizer on")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(f) for f in files], trainer)
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: str | os.PathLike) -> None:
    """Write tokenizer.json atomically."""
    write_atomically(path, lambda tmp: tokenizer.save(tmp))


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Read a tokenizer.json and check that it has our three special tokens; ValueError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"tokenizer={str(path)!r} does not exist or is not a file")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises its own Exception type for unreadable files
        raise ValueError(f"tokenizer={str(path)!r} is not a readable tokenizer.json: {err}") from err
    missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
    if missing:
        raise ValueError(f"tokenizer={str(path)!r} lacks the special token(s) {missing}")
    return tokenizer


def special_token_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """The ids the model config records: eos_token_id, pad_token_id, bos_token_id."""
    return {"eos_token_id": tokenizer.token_to_id(EOS_TOKEN), "pad_token_id": tokenizer.token_to_id(PAD_TOKEN),
            "bos_token_id": tokenizer.token_to_id(BOS_TOKEN)}


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, tied values sharing the mean of their ranks (as Spearman's rho requires)."""
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def id_frequency_spearman(counts: np.ndarray, first_id: int = len(SPECIAL_TOKENS)) -> float:
    """Spearman's rank correlation between token id and occurrence count, over ids >= first_id.

    rho = Pearson correlation of the (average) ranks (Spearman 1904). -1: every lower id is more frequent (what
    range routing assumes); 0: frequency unrelated to id. Special tokens are left out: their ids are fixed.
    """
    counts = np.asarray(counts, dtype=np.float64)[first_id:]
    if len(counts) < 2 or np.all(counts == counts[0]):
        raise ValueError("counts must hold at least two ids with different counts to correlate")
    return float(np.corrcoef(np.arange(len(counts)), average_ranks(counts))[0, 1])


def expert_shares(counts: np.ndarray, num_experts: int, routing: str) -> np.ndarray:
    """Fraction of all token occurrences that each expert receives under `routing` ("range" or "modulo").

    The expert of each id comes from the model's own `expert_ids`, so this measures exactly what training does.
    Balanced routing gives 1/E each.
    """
    if routing not in ROUTING_MODES:
        raise ValueError(f"routing={routing!r} is not one of {ROUTING_MODES}")
    require_int("num_experts", num_experts, minimum=1, maximum=len(counts))
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() <= 0:
        raise ValueError("counts must contain at least one token occurrence")
    rule = SimpleNamespace(routing=routing, num_experts=num_experts, vocab_size=len(counts))  # fields expert_ids reads
    experts = expert_ids(torch.arange(len(counts)), rule).numpy()
    return np.bincount(experts, weights=counts, minlength=num_experts) / counts.sum()
