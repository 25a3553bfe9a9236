import json

import numpy as np
import pytest

from complexity.training.data import (
    PackedData,
    build_token_file,
    open_token_file,
    resolve_text_files,
    token_counts,
    token_dtype,
    train_indices,
)
from complexity.training.tokenizer import load_tokenizer


def test_token_file_matches_the_tokenizer_and_is_reused(corpus, tokenizer_file, tmp_path):
    tokenizer = load_tokenizer(tokenizer_file)
    files = resolve_text_files([corpus])
    meta = build_token_file(files, tokenizer, tmp_path)
    tokens = open_token_file(tmp_path)
    assert tokens.dtype == np.uint16 and meta["num_documents"] == 12 and len(tokens) == meta["num_tokens"]
    first = tokenizer.encode(files[0].read_text(), add_special_tokens=False).ids
    assert tokens[:len(first)].tolist() == first and tokens[len(first)] == 0  # end-of-text after each document
    assert np.bincount(tokens, minlength=320).tolist() == token_counts(files, tokenizer).tolist()
    stamp = (tmp_path / "tokens.bin").stat().st_mtime_ns
    assert build_token_file(files, tokenizer, tmp_path) == meta
    assert (tmp_path / "tokens.bin").stat().st_mtime_ns == stamp  # not rewritten
    (tmp_path / "tokens.json").write_text(json.dumps({**meta, "num_tokens": meta["num_tokens"] + 1}))
    with pytest.raises(ValueError, match=r"tokens.bin holds \d+ bytes, .*tokens.json says"):
        open_token_file(tmp_path)
    assert build_token_file(files, tokenizer, tmp_path) == meta  # a cache that disagrees is rebuilt
    for garbage, match in ((b"\xff{", "tokens.json is unreadable or not JSON"), (b"[]", "must hold a JSON object"),
                           (json.dumps({**meta, "dtype": "float64"}).encode(), "dtype must be"),
                           (json.dumps({**meta, "num_tokens": "7"}).encode(), "num_tokens must be an integer")):
        (tmp_path / "tokens.json").write_bytes(garbage)
        with pytest.raises(ValueError, match=match):
            open_token_file(tmp_path)
    assert build_token_file(files, tokenizer, tmp_path) == meta and len(open_token_file(tmp_path)) == len(tokens)


def test_token_dtype():
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32


def test_resolve_text_files(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y")
    (tmp_path / ".hidden").write_text("z")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00")
    assert [p.name for p in resolve_text_files([tmp_path, tmp_path / "a.txt"])] == ["a.txt", "b.py"]
    with pytest.raises(ValueError, match="neither a file nor a directory"):
        resolve_text_files([tmp_path / "nope"])
    with pytest.raises(ValueError, match="no UTF-8 text"):
        resolve_text_files([tmp_path / "blob.bin"])


def test_packing_and_split():
    data = PackedData.split(np.arange(103), seq_len=10, eval_fraction=0.2)
    assert (data.num_train, data.num_eval) == (8, 2)
    assert data.sequences(np.array([1, 9])).tolist() == [list(range(10, 20)), list(range(90, 100))]
    with pytest.raises(ValueError, match="seq_len=10"):
        PackedData.split(np.arange(15), seq_len=10, eval_fraction=0.1)


def test_train_order_covers_each_epoch_once_and_is_reproducible():
    batches = np.concatenate([train_indices(step, 4, 10, seed=3) for step in range(5)])  # 2 epochs of 10
    assert sorted(batches[:10]) == list(range(10)) and sorted(batches[10:20]) == list(range(10))
    assert not np.array_equal(batches[:10], batches[10:])  # each epoch reshuffled
    assert np.array_equal(train_indices(3, 4, 10, seed=3), batches[12:16])  # a step's batch from the step alone
    assert not np.array_equal(train_indices(0, 4, 10, seed=4), batches[:4])
