import pytest
import torch
import torch.nn.functional as F

from complexity.core.mlp import SwiGLUMLP
from complexity.core.token_routed_mlp import (
    TokenRoutedMLP,
    _grouped_mm_op,
    expert_ids,
    grouped_mm_supported,
    route_tokens,
)


def _routed(make_config, **overrides):
    torch.manual_seed(0)
    config = make_config(**overrides)
    mlp = TokenRoutedMLP(config)
    for p in mlp.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return config, mlp


def test_swiglu_shapes_and_formula(make_config):
    config = make_config()
    mlp = SwiGLUMLP(config)
    x = torch.randn(2, 5, config.hidden_size)
    out = mlp(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    expected = (F.silu(x @ mlp.gate_proj.weight.T) * (x @ mlp.up_proj.weight.T)) @ mlp.down_proj.weight.T
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("routing", ["range", "modulo"])
def test_token_routed_equals_per_token_reference_loop(make_config, routing):
    config, mlp = _routed(make_config, routing=routing)
    x = torch.randn(3, 7, config.hidden_size)
    ids = torch.randint(0, config.vocab_size, (3, 7))
    out = mlp(x, ids)
    assert out.shape == x.shape
    expected = torch.empty_like(x)
    for b in range(3):
        for t in range(7):
            tok = int(ids[b, t])
            e = tok * config.num_experts // config.vocab_size if routing == "range" else tok % config.num_experts
            h = F.silu(x[b, t] @ mlp.gate_proj[e]) * (x[b, t] @ mlp.up_proj[e])
            expected[b, t] = h @ mlp.down_proj[e]
    torch.testing.assert_close(out, expected)


def test_routing_rules_and_counts(make_config):
    config = make_config(vocab_size=100, routing="range")
    ids = torch.tensor([0, 24, 25, 49, 50, 99, 3])
    assert expert_ids(ids, config).tolist() == [0, 0, 1, 1, 2, 3, 0]
    assert expert_ids(ids, make_config(vocab_size=100, routing="modulo")).tolist() == [0, 0, 1, 1, 2, 3, 3]
    routing = route_tokens(ids, config)
    assert routing.offsets.tolist() == [3, 5, 6, 7]  # cumulative counts (3, 2, 1, 1)
    assert routing.offsets.dtype == torch.int32
    assert torch.equal(routing.order[routing.inverse], torch.arange(7))
    last_only = route_tokens(torch.tensor([99, 99]), config).offsets
    assert torch.equal(last_only, torch.tensor([0, 0, 0, 2], dtype=torch.int32))


def test_token_routed_gradients_reach_only_used_experts(make_config):
    config, mlp = _routed(make_config, vocab_size=128)
    x = torch.randn(1, 6, config.hidden_size, requires_grad=True)
    ids = torch.tensor([[0, 1, 2, 3, 4, 5]])  # all in expert 0 under range routing
    mlp(x, ids).sum().backward()
    assert mlp.gate_proj.grad[0].abs().sum() > 0
    assert mlp.gate_proj.grad[1:].abs().sum() == 0
    assert x.grad.shape == x.shape


def test_token_routed_rejects_missing_or_misshapen_ids(make_config):
    # The ids' range is checked at the model's boundary (outside compiled graphs), not in the MLP.
    config, mlp = _routed(make_config)
    x = torch.randn(1, 2, config.hidden_size)
    with pytest.raises(ValueError, match="token_ids"):
        mlp(x)
    with pytest.raises(ValueError, match="shape"):
        mlp(x, torch.tensor([0, 1]))


def reference_expert_loop(mlp, x, ids, config):
    """The previous dispatch: each expert's tokens gathered, three matmuls, scattered back (eager, host-side sizes)."""
    flat, flat_ids = x.reshape(-1, x.shape[-1]), ids.reshape(-1)
    out = torch.zeros_like(flat)
    experts = expert_ids(flat_ids, config)
    for e in range(config.num_experts):
        rows = (experts == e).nonzero().squeeze(-1)
        chunk = flat[rows]
        out = out.index_add(0, rows, (F.silu(chunk @ mlp.gate_proj[e]) * (chunk @ mlp.up_proj[e])) @ mlp.down_proj[e])
    return out.view_as(x)


@pytest.mark.parametrize("dtype,grouped,tracing", [(torch.float32, True, False), (torch.float64, False, False),
                                                    (torch.float64, False, True)])
def test_dispatch_equals_reference_loop_forward_and_backward(make_config, monkeypatch, dtype, grouped, tracing):
    # float32 runs torch._grouped_mm over the sorted rows; float64 (no grouped kernel) expert by expert in eager
    # code, and every expert on every token where the counts cannot be read (as while compiling).
    if tracing:
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    config, mlp = _routed(make_config, vocab_size=128)
    mlp = mlp.to(dtype)
    x = torch.randn(2, 9, config.hidden_size, dtype=dtype, requires_grad=True)
    ids = torch.randint(0, 64, (2, 9))  # experts 0 and 1 only: empty groups too
    ids[0, 0] = 127
    assert grouped_mm_supported(x.reshape(-1, x.shape[-1]), mlp.gate_proj) == grouped
    grad_out = torch.randn_like(x)
    out = mlp(x, ids)
    got = torch.autograd.grad(out, [x, *mlp.parameters()], grad_out)
    expected_out = reference_expert_loop(mlp, x, ids, config)
    expected = torch.autograd.grad(expected_out, [x, *mlp.parameters()], grad_out)
    torch.testing.assert_close(out, expected_out)
    for name, a, b in zip(["x", "gate", "up", "down"], got, expected):
        torch.testing.assert_close(a, b, msg=name)
    assert got[1][2].abs().sum() == 0 and got[1][3].abs().sum() > 0  # expert 2 unused, 3 has token 127


def test_grouped_mm_custom_op_matches_aten_with_gradients():
    """The op torch.compile sees (shape rule + backward of our own) against aten._grouped_mm and its autograd."""
    x = torch.randn(12, 8, dtype=torch.float64).float().requires_grad_()
    weight = torch.randn(3, 8, 4, requires_grad=True)
    offsets = torch.tensor([5, 5, 12], dtype=torch.int32)
    torch.library.opcheck(_grouped_mm_op, (x, weight, offsets))
    grad = torch.randn(12, 4)
    ours = torch.autograd.grad(_grouped_mm_op(x, weight, offsets), [x, weight], grad)
    aten = torch.autograd.grad(torch._grouped_mm(x, weight, offs=offsets), [x, weight], grad)
    for a, b in zip(ours, aten):
        torch.testing.assert_close(a, b)
