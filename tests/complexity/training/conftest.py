"""Shared fixtures for the training tests: a small synthetic corpus, a tokenizer trained on it once, and a
factory of TrainConfigs for a model with hidden size 32 that trains in milliseconds per step."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from complexity.training.tokenizer import save_tokenizer, train_tokenizer
from complexity.training.train import TrainConfig

WORDS = ("the cat dog bird sat ran flew on under over a mat log tree quickly slowly red blue big small and then "
         "def return class import self value print for in if else").split()
TINY_MODEL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=32, num_experts=4)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """12 text files of seeded pseudo-sentences (about 20,000 tokens in all)."""
    directory = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    for i in range(12):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "." for _ in range(120)]
        (directory / f"doc{i:02d}.txt").write_text("\n".join(sentences) + "\n")
    return directory


@pytest.fixture(scope="session")
def tokenizer_file(corpus, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(train_tokenizer(sorted(corpus.iterdir()), vocab_size=320), path)
    return path


@pytest.fixture(scope="session")
def model_config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "model.json"
    path.write_text(json.dumps(TINY_MODEL))
    return path


@pytest.fixture
def make_train_config(corpus, tokenizer_file, model_config_file, tmp_path):
    """Factory: a TrainConfig of the tiny model on the corpus in tmp_path/<name>, fields overridden."""

    def make(name: str = "run", **overrides) -> TrainConfig:
        settings = dict(data=[str(corpus)], output_dir=str(tmp_path / name), config=str(model_config_file),
                        tokenizer=str(tokenizer_file), seq_len=16, micro_batch_size=2, grad_accum=2, max_steps=6,
                        lr=3e-3, warmup_steps=2, eval_interval=3, eval_batches=2, eval_fraction=0.05,
                        save_interval=3, precision="fp32", progress=False)
        return TrainConfig(**{**settings, **overrides})

    return make


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these matmuls are tiny, and on a shared machine a second thread mostly waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
