import pytest
import torch

from complexity import ComplexityConfig, ComplexityForCausalLM

# A model small enough that a forward takes milliseconds: 2 layers, hidden 64, vocab 128.
TINY = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, num_experts=4)


def _config(**overrides) -> ComplexityConfig:
    return ComplexityConfig(**{**TINY, **overrides})


def _model(seed: int = 0, dtype=torch.float32, **overrides) -> ComplexityForCausalLM:
    torch.manual_seed(seed)
    model = ComplexityForCausalLM(_config(**overrides))
    model.init_weights()
    return model.to(dtype).eval()


@pytest.fixture
def make_config():
    """Factory: the tiny test config with fields overridden."""
    return _config


@pytest.fixture
def make_model():
    """Factory: an initialised tiny model in eval mode (seeded), fields overridden."""
    return _model
