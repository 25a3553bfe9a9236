import math

import pytest
import torch

from complexity.core.attention import ComplexityAttention, build_attention_mask
from complexity.core.cache import KVCache
from complexity.core.rotary import RotaryEmbedding, apply_rotary


def reference_attention(attn: ComplexityAttention, x, cos, sin, allowed):
    """Plain softmax attention written out by hand, KV heads repeated to the query heads."""
    b, s, _ = x.shape
    q = attn.q_proj(x).view(b, s, attn.num_heads, attn.head_dim).transpose(1, 2)
    k = attn.k_proj(x).view(b, s, attn.num_kv_heads, attn.head_dim).transpose(1, 2)
    v = attn.v_proj(x).view(b, s, attn.num_kv_heads, attn.head_dim).transpose(1, 2)
    if attn.q_norm is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
    q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    groups = attn.num_heads // attn.num_kv_heads
    k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(attn.head_dim)
    scores = scores.masked_fill(~allowed, float("-inf"))
    out = scores.softmax(-1) @ v
    return attn.o_proj(out.transpose(1, 2).reshape(b, s, -1))


def _setup(make_config, seq=12, **overrides):
    torch.manual_seed(0)
    config = make_config(**overrides)
    attn = ComplexityAttention(config, 0)
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, seq, config.hidden_size)
    cos, sin = RotaryEmbedding(config)(torch.arange(seq).expand(2, seq))
    return config, attn, x, cos, sin


@pytest.mark.parametrize("kv_heads,qk_norm", [(1, True), (2, True), (4, False)])
def test_gqa_equals_softmax_reference_with_repeated_kv(make_config, kv_heads, qk_norm):
    config, attn, x, cos, sin = _setup(make_config, num_key_value_heads=kv_heads, use_qk_norm=qk_norm)
    causal = torch.ones(12, 12, dtype=torch.bool).tril()
    torch.testing.assert_close(attn(x, cos, sin, None), reference_attention(attn, x, cos, sin, causal))


def test_gqa_equals_multi_head_attention_with_repeated_kv_weights(make_config):
    config, gqa, x, cos, sin = _setup(make_config, num_key_value_heads=2)
    mha = ComplexityAttention(make_config(num_key_value_heads=4), 0)
    groups, hd = 2, config.head_dim
    with torch.no_grad():
        for name in ("q_proj", "o_proj", "q_norm", "k_norm"):
            getattr(mha, name).load_state_dict(getattr(gqa, name).state_dict())
        for name in ("k_proj", "v_proj"):
            w = getattr(gqa, name).weight.view(config.num_key_value_heads, hd, -1)
            getattr(mha, name).weight.copy_(w.repeat_interleave(groups, dim=0).reshape(-1, config.hidden_size))
    torch.testing.assert_close(gqa(x, cos, sin, None), mha(x, cos, sin, None))


@pytest.mark.parametrize("window", [1, 3, 5, 40])
def test_sliding_window_equals_masked_full_attention(make_config, window):
    config, attn, x, cos, sin = _setup(make_config, sliding_window=window)
    mask = build_attention_mask(0, 12, 12, None, window, x.device)
    i, j = torch.arange(12)[:, None], torch.arange(12)[None, :]
    allowed = (j <= i) & (i - j < window)
    assert torch.equal(mask[0, 0], allowed)
    torch.testing.assert_close(attn(x, cos, sin, mask), reference_attention(attn, x, cos, sin, allowed))


def test_one_query_against_cached_keys_sees_every_key(make_config):
    """The is_causal trap: one new query with N cached keys must attend to all of them."""
    config, attn, x, cos, sin = _setup(make_config)
    cache = KVCache(1)
    full = attn(x, cos, sin, None)
    attn(x[:, :-1], cos[:, :-1], sin[:, :-1], None, cache)
    cache.advance(11)
    mask = build_attention_mask(11, 1, 12, None, None, x.device)
    last = attn(x[:, -1:], cos[:, -1:], sin[:, -1:], mask, cache)
    torch.testing.assert_close(last, full[:, -1:])


def test_padding_mask_hides_pad_keys_and_pad_rows_stay_finite(make_config):
    config, attn, x, cos, sin = _setup(make_config)
    padding = torch.ones(2, 12, dtype=torch.long)
    padding[0, :5] = 0
    mask = build_attention_mask(0, 12, 12, padding, None, x.device)
    out = attn(x, cos, sin, mask)
    assert torch.isfinite(out).all()
    # Changing a pad token's input leaves every real token's output unchanged.
    x2 = x.clone()
    x2[0, :5] += 3.0
    torch.testing.assert_close(attn(x2, cos, sin, mask)[0, 5:], out[0, 5:])
    torch.testing.assert_close(attn(x2, cos, sin, mask)[1], out[1])


def test_window_cache_keeps_only_window_minus_one_keys():
    cache = KVCache(1, sliding_window=4)
    for step in range(6):
        k, _ = cache.update(0, torch.full((1, 1, 1, 2), float(step)), torch.zeros(1, 1, 1, 2))
        cache.advance(1)
        assert k.shape[-2] == min(step + 1, 4)
    assert cache.num_cached == 3
    assert cache.keys[0][0, 0, :, 0].tolist() == [3.0, 4.0, 5.0]
    one = KVCache(1, sliding_window=1)
    one.update(0, torch.zeros(1, 1, 5, 2), torch.zeros(1, 1, 5, 2))
    assert one.num_cached == 0
