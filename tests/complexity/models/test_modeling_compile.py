"""The zoo under torch.compile: no graph breaks (torch._dynamo.explain), compiled == eager, and the static KV cache
(cached == uncached for every cache, one compiled decode step for every position).

torch.compile is slow on a CPU, so the compiled models here are tiny (hidden 32, one layer)."""

import pytest
import torch

from complexity.core.cache import StaticKVCache
from complexity.models.modeling import _next_token_logits

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2)


def uncached_greedy(model, ids, steps, mask=None):
    """Full recomputation every step; a pad mask, when given, grows with ones."""
    for _ in range(steps):
        next_token = model(ids, attention_mask=mask).logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, next_token], dim=-1)
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
    return ids


def left_padded(lengths, vocab=128):
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, width - n:] = torch.randint(0, vocab, (n,))
        mask[i, width - n:] = 1
    return ids, mask


@pytest.mark.parametrize("routed", [True, False])
def test_forward_and_loss_trace_without_graph_breaks(make_model, routed):
    model = make_model(use_token_routed_mlp=routed, **SMALL).train()
    ids = torch.randint(0, 128, (2, 8))
    explanation = torch._dynamo.explain(model)(ids, labels=ids)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_decode_step_with_static_cache_traces_without_graph_breaks(make_model):
    model = make_model(sliding_window=4, **SMALL)
    ids, mask = left_padded([6, 3])
    cache = StaticKVCache(model.config, 2, 12)
    _next_token_logits(model, ids, mask, cache)  # the prompt, eager
    explanation = torch._dynamo.explain(_next_token_logits)(model, ids[:, -1:], None, cache)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def loss_and_grads(model, step_model, ids):
    model.zero_grad()
    loss = step_model(ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


def test_compiled_training_step_equals_eager(make_model):
    """fullgraph=True compiles forward, loss and backward of the token-routed model (grouped matmuls as custom ops
    inside the graph); loss and every gradient equal eager's to float32 tolerance."""
    model = make_model(**SMALL).train()
    ids = torch.randint(0, 128, (2, 8))
    eager_loss, eager_grads = loss_and_grads(model, model, ids)
    compiled_loss, compiled_grads = loss_and_grads(model, torch.compile(model, fullgraph=True), ids)
    torch.testing.assert_close(compiled_loss, eager_loss)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, msg=name)


@pytest.mark.parametrize("overrides", [{}, {"sliding_window": 4}, {"use_token_routed_mlp": False}])
@pytest.mark.parametrize("padded", [False, True])
def test_static_and_dynamic_cache_generate_the_uncached_tokens(make_model, overrides, padded):
    model = make_model(dtype=torch.float64, **overrides)
    if padded:
        ids, mask = left_padded([9, 4, 6])
    else:
        ids, mask = torch.randint(0, 128, (2, 7)), None
    expected = uncached_greedy(model, ids, 14, mask)
    for implementation in ("dynamic", "static"):
        got = model.generate(ids, 14, attention_mask=mask, cache_implementation=implementation)
        assert torch.equal(got, expected), implementation


def test_static_cache_chunked_prefill_equals_full_forward(make_model):
    model = make_model(dtype=torch.float64, sliding_window=5)
    ids, mask = left_padded([12, 8])
    full = model(ids, attention_mask=mask).logits
    cache = StaticKVCache(model.config, 2, 16, dtype=torch.float64)
    first = model(ids[:, :5], attention_mask=mask[:, :5], past_key_values=cache).logits
    rest = model(ids[:, 5:], attention_mask=mask, past_key_values=cache).logits
    torch.testing.assert_close(torch.cat([first, rest], dim=1)[mask.bool()], full[mask.bool()])
    assert cache.seen_tokens == 12 and cache.token_count.tolist() == [12, 8]


def test_static_cache_writes_in_place_and_rejects_overflow(make_model):
    model = make_model()
    cache = StaticKVCache(model.config, 1, 6)
    buffers = [k.data_ptr() for k in cache.keys]
    model(torch.randint(0, 128, (1, 4)), past_key_values=cache)
    model(torch.randint(0, 128, (1, 2)), past_key_values=cache)
    assert [k.data_ptr() for k in cache.keys] == buffers and cache.keys[0].shape[-2] == 6
    assert cache.keys[0].abs().sum(dim=(0, 1, 3)).ne(0).all()  # every slot written
    with pytest.raises(ValueError, match="max_length"):
        model(torch.zeros(1, 1, dtype=torch.long), past_key_values=cache)
    with pytest.raises(ValueError, match="batch_size"):
        model(torch.zeros(2, 1, dtype=torch.long), past_key_values=StaticKVCache(model.config, 1, 6))
    with pytest.raises(ValueError, match="max_length"):
        StaticKVCache(model.config, 1, model.config.max_position_embeddings + 1)


def test_windowed_static_cache_is_a_ring_of_window_entries(make_model):
    model = make_model(dtype=torch.float64, sliding_window=3)
    ids = torch.randint(0, 128, (1, 10))
    cache = StaticKVCache(model.config, 1, 10, dtype=torch.float64)
    assert cache.capacity == 3 and cache.keys[0].shape[-2] == 3
    full = model(ids).logits
    steps = [model(ids[:, :4], past_key_values=cache).logits]  # 4 tokens into 3 entries: the last 3 kept
    steps += [model(ids[:, t:t + 1], past_key_values=cache).logits for t in range(4, 10)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full)
    assert sorted(cache.entry_slot.tolist()) == [7, 8, 9]


def test_generate_rejects_unknown_cache_and_compile_without_static_cache(make_model):
    model = make_model()
    ids = torch.zeros(1, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="cache_implementation"):
        model.generate(ids, 2, cache_implementation="paged")
    with pytest.raises(ValueError, match="compile"):
        model.generate(ids, 2, compile=True)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(ids, model.config.max_position_embeddings, cache_implementation="static")


def test_compiled_generate_equals_eager_and_compiles_once(make_model):
    """generate(compile=True): one graph for every decode position (here 10 steps, two prompt lengths), the eager
    static cache's tokens (float32: the compiled kernels may round differently, far below the top-token gaps)."""
    model = make_model(sliding_window=6, **SMALL)
    torch._dynamo.reset()
    ids, mask = left_padded([5, 3])
    eager = model.generate(ids, 10, attention_mask=mask, cache_implementation="static")
    counters = torch._dynamo.utils.counters
    counters.clear()
    compiled = model.generate(ids, 10, attention_mask=mask, cache_implementation="static", compile=True)
    assert torch.equal(compiled, eager)
    assert counters["stats"]["unique_graphs"] == 1
