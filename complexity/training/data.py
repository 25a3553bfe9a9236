"""Training data: local text files tokenized once into a memory-mapped token file, cut into packed sequences.

Every file is one document; documents are concatenated with the end-of-text token after each, and the stream is
cut into non-overlapping sequences of `seq_len` tokens ("packing", as GPT-2/3 trained: no padding, a sequence may
span a document boundary). The last `eval_fraction` of the sequences is held out for evaluation.

The order of training sequences is a pure function of (seed, step): sample number n (n = step·global_batch + j)
is sequence perm_e[n mod N] of epoch e = n // N, where perm_e is a permutation seeded by (seed, e). Resuming at a
step therefore needs no saved iterator state, and a run with more processes reads the same global batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from complexity.atomic import write_atomically
from complexity.training.tokenizer import EOS_TOKEN

logger = logging.getLogger(__name__)

TOKENS_NAME = "tokens.bin"
TOKENS_META_NAME = "tokens.json"
_ENCODE_CHUNK = 64  # documents per encode_batch call: bounds memory on large corpora


def resolve_text_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The files named in `paths`, directories expanded recursively (hidden entries skipped), sorted, deduplicated.

    Files that are not UTF-8 text are skipped with a warning. Raises ValueError when nothing readable is left.
    """
    if not paths:
        raise ValueError("data must name at least one file or directory")
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file()
                         and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            found.add(path)
        else:
            raise ValueError(f"data={str(path)!r} is neither a file nor a directory")
    files = []
    for path in sorted(p.resolve() for p in found):
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            logger.warning("skipping %s: not UTF-8 text", path)
            continue
        except OSError as err:
            raise ValueError(f"data file {str(path)!r} is unreadable: {err.strerror or err}") from err
        files.append(path)
    if not files:
        raise ValueError(f"data={[str(p) for p in paths]} holds no UTF-8 text file")
    return files


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65,536), else uint32: 2 or 4 bytes per token on disk."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def data_fingerprint(files: Sequence[Path], tokenizer: Tokenizer) -> str:
    """sha256 of the file list (path, size, modification time) and the tokenizer: changes when either does."""
    digest = hashlib.sha256(tokenizer.to_str().encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def encode_documents(files: Sequence[Path], tokenizer: Tokenizer) -> Iterator[np.ndarray]:
    """The token ids of each file followed by the end-of-text token, one int64 array per file, in order."""
    eos = tokenizer.token_to_id(EOS_TOKEN)
    for start in range(0, len(files), _ENCODE_CHUNK):
        texts = [p.read_text(encoding="utf-8") for p in files[start:start + _ENCODE_CHUNK]]
        for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
            yield np.asarray(encoding.ids + [eos], dtype=np.int64)


def token_counts(files: Sequence[Path], tokenizer: Tokenizer) -> np.ndarray:
    """Occurrences of every token id (length vocab_size) when `files` are encoded as the training data is."""
    counts = np.zeros(tokenizer.get_vocab_size(), dtype=np.int64)
    for ids in encode_documents(files, tokenizer):
        counts += np.bincount(ids, minlength=len(counts))
    return counts


def build_token_file(files: Sequence[Path], tokenizer: Tokenizer, directory: str | os.PathLike) -> dict:
    """Tokenize `files` into directory/tokens.bin (+ tokens.json describing it) unless an up-to-date one exists.

    Returns the metadata: dtype, num_tokens, num_documents, vocab_size, fingerprint. Both files are written
    atomically, the token file first, so an interrupted build is redone on the next call.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fingerprint = data_fingerprint(files, tokenizer)
    meta_path = directory / TOKENS_META_NAME
    if meta_path.is_file():
        try:
            meta = read_token_meta(directory)
        except ValueError as err:
            logger.warning("rebuilding the token file: %s", err)
        else:
            if meta["fingerprint"] == fingerprint:
                return meta
    vocab_size = tokenizer.get_vocab_size()
    dtype = token_dtype(vocab_size)
    num_tokens = 0

    def write(tmp: str) -> None:
        nonlocal num_tokens
        with open(tmp, "wb") as out:
            for ids in encode_documents(files, tokenizer):
                ids.astype(dtype).tofile(out)
                num_tokens += len(ids)

    write_atomically(directory / TOKENS_NAME, write)
    meta = {"dtype": dtype.name, "num_tokens": num_tokens, "num_documents": len(files), "vocab_size": vocab_size,
            "fingerprint": fingerprint}
    write_atomically(meta_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n"))
    logger.info("tokenized %d files into %d tokens (%s)", len(files), num_tokens, directory / TOKENS_NAME)
    return meta


def read_token_meta(directory: str | os.PathLike) -> dict:
    """tokens.json, checked against tokens.bin's size; ValueError naming the file and field otherwise."""
    directory = Path(directory)
    path, tokens_path = directory / TOKENS_META_NAME, directory / TOKENS_NAME
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"{path} does not exist") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is unreadable or not JSON: {err}") from err
    if not isinstance(meta, dict):
        raise ValueError(f"{path} must hold a JSON object")
    if meta.get("dtype") not in ("uint16", "uint32"):
        raise ValueError(f"{path}: dtype must be 'uint16' or 'uint32', got {meta.get('dtype')!r}")
    for key in ("num_tokens", "num_documents", "vocab_size"):
        if not isinstance(meta.get(key), int) or isinstance(meta.get(key), bool) or meta[key] < 0:
            raise ValueError(f"{path}: {key} must be an integer >= 0, got {meta.get(key)!r}")
    if not isinstance(meta.get("fingerprint"), str):
        raise ValueError(f"{path}: fingerprint must be a string")
    size = tokens_path.stat().st_size if tokens_path.is_file() else None
    if size != meta["num_tokens"] * np.dtype(meta["dtype"]).itemsize:
        raise ValueError(f"{tokens_path} holds {size} bytes, {path} says {meta['num_tokens']} {meta['dtype']} "
                         "tokens")
    return meta


def open_token_file(directory: str | os.PathLike) -> np.memmap:
    """The token file as a read-only memory map, checked against its metadata (ValueError otherwise)."""
    directory = Path(directory)
    meta = read_token_meta(directory)
    if meta["num_tokens"] == 0:
        raise ValueError(f"{directory / TOKENS_NAME} holds no tokens")
    return np.memmap(directory / TOKENS_NAME, dtype=np.dtype(meta["dtype"]), mode="r")


@dataclass(frozen=True)
class PackedData:
    """Fixed-length sequences over a token array: the first `num_train` train, the last `num_eval` held out."""

    tokens: np.ndarray
    seq_len: int
    num_train: int
    num_eval: int

    @classmethod
    def split(cls, tokens: np.ndarray, seq_len: int, eval_fraction: float) -> PackedData:
        """Cut `tokens` into len // seq_len sequences (the tail is dropped) and hold out
        max(1, round(eval_fraction · count)) of them."""
        count = len(tokens) // seq_len
        num_eval = max(1, round(eval_fraction * count))
        if count - num_eval < 1:
            raise ValueError(f"the data holds {len(tokens)} tokens = {count} sequences of seq_len={seq_len}: too "
                             "few for a training and a held-out split; add data or lower seq_len")
        return cls(tokens=tokens, seq_len=seq_len, num_train=count - num_eval, num_eval=num_eval)

    def sequences(self, indices: np.ndarray) -> torch.Tensor:
        """Sequences by global index (held-out ones start at num_train) as an int64 tensor [len(indices), seq_len]."""
        rows = [self.tokens[i * self.seq_len:(i + 1) * self.seq_len] for i in indices]
        return torch.from_numpy(np.stack(rows).astype(np.int64))


def train_indices(step: int, global_batch: int, num_train: int, seed: int) -> np.ndarray:
    """Training sequence indices of the global batch of optimizer step `step` (0-based); see the module docstring."""
    samples = np.arange(step * global_batch, (step + 1) * global_batch)
    out = np.empty(global_batch, dtype=np.int64)
    for epoch in np.unique(samples // num_train):
        in_epoch = samples // num_train == epoch
        perm = np.random.default_rng([seed, int(epoch)]).permutation(num_train)
        out[in_epoch] = perm[samples[in_epoch] % num_train]
    return out
