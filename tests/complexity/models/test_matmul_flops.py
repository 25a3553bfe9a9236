"""The zoo's own FLOP count (complexity.models.matmul_flops) against the analytic profiler's. The zoo may not import the
profiler; its tests may, to check that both derivations give the same number."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from complexity.config import SIZES, ComplexityConfig, config_for_size
from complexity.models.matmul_flops import causal_pairs, train_step_flops
from profiler.arch import from_complexity_config
from profiler.formulas import flops as profiler_flops

WORKLOADS = [(1, 1), (1, 128), (4, 256), (8, 2048)]  # (batch, seq_len)


def _profiler_count(config: ComplexityConfig, batch: int, seq_len: int) -> int:
    return profiler_flops.train_step_flops(from_complexity_config(config), batch, seq_len, "causal")


def test_hand_computed_example():
    # 1 layer, h=4, H=2, K=1, d=2, two experts of width 4, V=10, B=1, S=3 (no window: 6 causal pairs).
    config = ComplexityConfig(vocab_size=10, hidden_size=4, intermediate_size=8, num_hidden_layers=1,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=2, num_experts=2)
    projections = 4 * 2 * 2 + 2 * 4 * 1 * 2 + 2 * 2 * 4  # q, k and v, o
    swiglu = 3 * 4 * 4
    weights = 2 * 3 * (projections + swiglu) + 2 * 3 * 4 * 10  # layer + LM head
    scores = values = 2 * 1 * 2 * 6 * 2
    assert train_step_flops(config, batch=1, seq_len=3) == 3 * weights + 4 * scores + 3 * values == 2784


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("batch, seq_len", WORKLOADS)
def test_every_size_matches_the_profiler(size, batch, seq_len):
    config = config_for_size(size)
    assert train_step_flops(config, batch, seq_len) == _profiler_count(config, batch, seq_len)


VARIANTS = {
    "window below seq_len": dict(sliding_window=64),
    "window above seq_len": dict(sliding_window=4096),
    "window equal to seq_len": dict(sliding_window=256),
    "dense MLP": dict(use_token_routed_mlp=False),
    "no QK-norm": dict(use_qk_norm=False),
    "untied head": dict(tie_word_embeddings=False),
    "MHA": dict(num_key_value_heads=4),
    "MQA": dict(num_key_value_heads=1),
    "head_dim apart from hidden/heads": dict(head_dim=96),
}


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
@pytest.mark.parametrize("batch, seq_len", [(2, 256), (3, 100)])
def test_variants_match_the_profiler(overrides, batch, seq_len):
    config = config_for_size("tiny", **overrides)
    assert train_step_flops(config, batch, seq_len) == _profiler_count(config, batch, seq_len)


@st.composite
def configs(draw) -> ComplexityConfig:
    heads = draw(st.integers(1, 8))
    kv_heads = draw(st.sampled_from([k for k in range(1, heads + 1) if heads % k == 0]))
    experts = draw(st.integers(1, 4))
    return ComplexityConfig(
        vocab_size=draw(st.integers(experts, 300)), hidden_size=draw(st.integers(1, 96)),
        intermediate_size=experts * draw(st.integers(1, 64)), num_hidden_layers=draw(st.integers(1, 3)),
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=2 * draw(st.integers(1, 16)),
        sliding_window=draw(st.none() | st.integers(1, 80)), use_token_routed_mlp=draw(st.booleans()),
        num_experts=experts, use_qk_norm=draw(st.booleans()), tie_word_embeddings=draw(st.booleans()),
    )


@settings(max_examples=200, deadline=None)
@given(config=configs(), batch=st.integers(1, 8), seq_len=st.integers(1, 160))
def test_random_configs_match_the_profiler(config, batch, seq_len):
    assert train_step_flops(config, batch, seq_len) == _profiler_count(config, batch, seq_len)


def test_causal_pairs_counts_each_query_once():
    seq_len = 10
    for window in (None, 1, 3, 9, 10, 11):
        seen = sum(min(i + 1, window or seq_len) for i in range(seq_len))  # query i sees min(i+1, W) keys
        assert causal_pairs(seq_len, window) == seen


@pytest.mark.parametrize("field, kwargs", [("batch", dict(batch=0, seq_len=8)),
                                           ("seq_len", dict(batch=1, seq_len=True)),
                                           ("seq_len", dict(batch=1, seq_len=2.0))])
def test_bad_workload_names_the_field(field, kwargs):
    with pytest.raises(ValueError, match=rf"{field}=.* must be an integer >= 1"):
        train_step_flops(config_for_size("tiny"), **kwargs)
