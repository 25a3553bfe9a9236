"""The dispatch counter against hand-computed FLOPs (2 per multiply-add) and across devices."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from complexity.models.utils import create_complexity_model
from profiler.counting import FlopCounter, causal_pairs, exclusive_by_module, inclusive_by_module

B, HQ, HKV, S, D = 2, 4, 2, 8, 16


def _count(fn, *tensors):
    with FlopCounter() as counter:
        fn(*tensors)
    return counter.counts


def test_linear_is_two_flops_per_multiply_add_and_bias_goes_to_other():
    layer = nn.Linear(16, 8, bias=True)
    counts = _count(layer, torch.randn(3, 5, 16))
    assert counts.matmul() == 2 * 15 * 16 * 8
    assert counts.other() == 15 * 8  # the bias add
    assert counts.matmul("backward") == 0


def test_bmm_and_grouped_mm():
    a, b = torch.randn(3, 5, 7), torch.randn(3, 7, 2)
    assert _count(torch.bmm, a, b).matmul() == 2 * 3 * 5 * 7 * 2
    tokens = torch.randn(10, 16, dtype=torch.bfloat16, device="meta")
    experts = torch.randn(3, 16, 8, dtype=torch.bfloat16, device="meta")
    offs = torch.tensor([3, 7, 10], dtype=torch.int32, device="meta")
    assert _count(lambda x, w: torch._grouped_mm(x, w, offs=offs), tokens, experts).matmul() == 2 * 10 * 16 * 8


def _qkv(device, heads_kv=HQ, requires_grad=False):
    torch.manual_seed(0)
    shapes = [(B, HQ, S, D), (B, heads_kv, S, D), (B, heads_kv, S, D)]
    return [torch.randn(s, device=device, requires_grad=requires_grad) for s in shapes]


@pytest.mark.parametrize("heads_kv", [HQ, HKV])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_sdpa_dense_and_causal_forward(device, heads_kv):
    q, k, v = _qkv(device, heads_kv)
    dense = _count(lambda *t: F.scaled_dot_product_attention(*t, enable_gqa=heads_kv != HQ), q, k, v)
    causal = _count(lambda *t: F.scaled_dot_product_attention(*t, is_causal=True, enable_gqa=heads_kv != HQ), q, k, v)
    assert dense.matmul() == dense.matmul_causal() == 4 * B * HQ * S * S * D
    assert causal.matmul() == 4 * B * HQ * S * S * D
    assert causal.matmul_causal() == 4 * B * HQ * (S * (S + 1) // 2) * D
    assert dense.unknown == causal.unknown == {}


def test_sdpa_backward_is_five_products_and_cpu_equals_meta():
    results = []
    for device in ("cpu", "meta"):
        q, k, v = _qkv(device, HKV, requires_grad=True)
        with FlopCounter() as counter:
            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True).sum().backward()
        c = counter.counts
        results.append((c.matmul("forward"), c.matmul("backward"), c.matmul_causal("backward")))
    assert results[0] == results[1]
    forward, backward, backward_causal = results[0]
    assert backward == 5 * forward // 2 == 10 * B * HQ * S * S * D
    assert backward_causal == 10 * B * HQ * (S * (S + 1) // 2) * D


def test_boolean_and_sliding_window_masks_count_unmasked_pairs():
    q, k, v = _qkv("cpu")
    window = 3
    i = torch.arange(S)
    allowed = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < window)
    counts = _count(lambda *t: F.scaled_dot_product_attention(*t, attn_mask=allowed), q, k, v)
    pairs = sum(min(row + 1, window) for row in range(S))
    assert counts.matmul() == 4 * B * HQ * S * S * D
    assert counts.matmul_causal() == 4 * B * HQ * pairs * D
    meta = _count(lambda *t: F.scaled_dot_product_attention(*t, attn_mask=allowed.to("meta")), *(t.to("meta") for t in (q, k, v)))
    assert meta.matmul() == counts.matmul() and meta.matmul_causal() is None  # a meta mask has no values


def test_causal_pairs_with_more_keys_than_queries():
    assert causal_pairs(4, 4) == 10
    assert causal_pairs(2, 5) == 1 + 2  # torch aligns the triangle top-left
    assert causal_pairs(5, 2) == 1 + 2 + 2 + 2 + 2


def test_unknown_ops_are_listed_not_counted():
    x = torch.randn(4, 4)
    counts = _count(lambda t: torch.linalg.eigvalsh(t @ t.T), x)
    assert "aten._linalg_eigh" in counts.unknown or "aten.linalg_eigh" in counts.unknown
    assert counts.matmul() == 2 * 4 * 4 * 4


def test_other_bucket_never_mixes_with_matmul():
    x = torch.randn(3, 10)
    counts = _count(lambda t: torch.softmax(t * 2 + 1, dim=-1).sum(), x)
    assert counts.matmul() == 0
    assert counts.other() == 30 + 30 + 4 * 30 + 30  # mul, add, softmax (4/element), sum


def test_zoo_counts_equal_on_cpu_and_meta_and_modules_sum_to_total():
    results = []
    for device in ("cpu", "meta"):
        model = create_complexity_model("tiny", device=device, num_hidden_layers=2, use_token_routed_mlp=False)
        ids = torch.randint(0, 32000, (2, 16), device=device)
        with FlopCounter() as counter:
            model(ids, labels=ids).loss.backward()
        counts = counter.counts
        assert counts.unknown == {}
        for phase in ("forward", "backward"):
            assert sum(counts.by_module(phase).values()) == counts.matmul(phase)
            assert sum(counts.by_module(phase, "other").values()) == counts.other(phase)
        results.append((counts.matmul("forward"), counts.matmul("backward"), counts.matmul_causal(), counts.other(),
                        counts.by_module("forward")))
    assert results[0] == results[1]
    by_module = results[0][4]
    q_proj = next(v for k, v in by_module.items() if k.endswith("layers.0.self_attn.q_proj"))
    assert q_proj == 2 * 32 * 256 * 256
    rolled = inclusive_by_module(by_module)
    assert rolled["ComplexityForCausalLM"] + by_module.get("Global", 0) == results[0][0]


def test_token_routed_mlp_counts_one_expert_per_token():
    model = create_complexity_model("tiny", num_hidden_layers=1, use_token_routed_mlp=True)
    ids = torch.randint(0, 32000, (2, 16))
    with FlopCounter() as counter:
        model(ids)
    mlp = sum(v for k, v in counter.counts.by_module("forward").items() if k.endswith(".mlp"))
    width = model.config.expert_intermediate_size
    assert mlp == 3 * 2 * 32 * 256 * width


def test_meta_stand_in_for_token_routed_mlp_has_the_real_matmul_flops():
    from complexity.config import config_for_size
    from profiler.counting.counter import count_training_step
    from profiler.source import from_config_dict

    source = from_config_dict(config_for_size("tiny", num_hidden_layers=1).to_dict(), "tiny, 1 layer")
    ids = torch.randint(0, 32000, (1, 16))
    real = count_training_step(source.build("cpu", for_counting=True), ids)
    meta = count_training_step(source.build("meta", for_counting=True), ids.to("meta"))
    for phase in ("forward", "backward"):
        assert real.matmul(phase) == meta.matmul(phase)



def test_exclusive_by_module_undoes_inclusive_counts_and_skips_unlisted_containers():
    inclusive = {"Global": {"mm": 10, "bmm": 3}, "M": {"mm": 10, "bmm": 3}, "M.layers.0": {"mm": 6, "bmm": 3},
                 "M.layers.0.q": {"mm": 4}, "M.head": {"mm": 2}}  # "M.layers" (a ModuleList) is never called
    assert exclusive_by_module(inclusive, root="Global") == {
        "Global": {}, "M": {"mm": 2}, "M.layers.0": {"mm": 2, "bmm": 3}, "M.layers.0.q": {"mm": 4},
        "M.head": {"mm": 2}}
    assert inclusive_by_module({"M.layers.0": 5, "M.layers.0.q": 4, "M.head": 2})["M"] == 11
