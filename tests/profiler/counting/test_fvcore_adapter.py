"""fvcore with our handles: SDPA priced, MACs converted to FLOPs, and the matmul bucket equal to our counter's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis
from torch import nn

from complexity.models.utils import create_complexity_model
from profiler.counting import FlopCounter
from profiler.counting.fvcore_adapter import FLOPS_PER_MAC, fvcore_counts


class _Attention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)


def test_fvcore_alone_skips_sdpa_and_the_adapter_prices_it_in_flops():
    q, k, v = torch.randn(2, 4, 8, 16), torch.randn(2, 2, 8, 16), torch.randn(2, 2, 8, 16)
    plain = FlopCountAnalysis(_Attention(), (q, k, v))
    plain.unsupported_ops_warnings(False)
    assert plain.total() == 0 and "aten::scaled_dot_product_attention" in plain.unsupported_ops()
    counts = fvcore_counts(_Attention(), (q, k, v))
    macs = 2 * 4 * 8 * 8 * (16 + 16)  # B·Hq·Sq·Sk·(d_qk + d_v), dense
    assert counts.raw_by_operator["scaled_dot_product_attention"] == macs
    assert counts.matmul == FLOPS_PER_MAC * macs == 4 * 2 * 4 * 8 * 8 * 16
    assert counts.unsupported == {}


def test_linear_macs_become_flops():
    counts = fvcore_counts(nn.Linear(16, 8, bias=False), (torch.randn(5, 16),))
    assert counts.raw_by_operator["linear"] == 5 * 16 * 8
    assert counts.matmul == 2 * 5 * 16 * 8


def test_fvcore_matmul_equals_our_counter_on_the_zoo():
    for routed in (False, True):
        device = "cpu" if routed else "meta"  # token routing needs real ids
        model = create_complexity_model("tiny", device=device, num_hidden_layers=2, use_token_routed_mlp=routed).eval()
        ids = torch.randint(0, 32000, (2, 16), device=device)
        fv = fvcore_counts(model, (ids,))
        with FlopCounter() as counter, torch.no_grad():
            model(ids)
        assert fv.unsupported == {}
        assert fv.matmul == counter.counts.matmul("forward")
