import pytest
import torch
import torch.nn.functional as F

from complexity.core.mlp import SwiGLUMLP
from complexity.core.token_routed_mlp import TokenRoutedMLP, expert_ids, route_tokens


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
    assert routing.counts == (3, 2, 1, 1)
    assert torch.equal(routing.order[routing.inverse], torch.arange(7))


def test_token_routed_gradients_reach_only_used_experts(make_config):
    config, mlp = _routed(make_config, vocab_size=128)
    x = torch.randn(1, 6, config.hidden_size, requires_grad=True)
    ids = torch.tensor([[0, 1, 2, 3, 4, 5]])  # all in expert 0 under range routing
    mlp(x, ids).sum().backward()
    assert mlp.gate_proj.grad[0].abs().sum() > 0
    assert mlp.gate_proj.grad[1:].abs().sum() == 0
    assert x.grad.shape == x.shape


def test_token_routed_rejects_bad_ids_and_missing_ids(make_config):
    config, mlp = _routed(make_config)
    x = torch.randn(1, 2, config.hidden_size)
    with pytest.raises(ValueError, match="vocab_size"):
        mlp(x, torch.tensor([[0, config.vocab_size]]))
    with pytest.raises(ValueError, match="vocab_size"):
        mlp(x, torch.tensor([[-1, 0]]))
    with pytest.raises(ValueError, match="token_ids"):
        mlp(x)
    with pytest.raises(ValueError, match="shape"):
        mlp(x, torch.tensor([0, 1]))
