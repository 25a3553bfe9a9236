import pytest
import torch

from complexity.core.normalization import RMSNorm, _RMSNormFunction
from complexity.core.rotary import RotaryEmbedding, apply_rotary


def test_rmsnorm_matches_formula_and_keeps_dtype():
    norm = RMSNorm(8, eps=1e-6)
    norm.reset_parameters()
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 9.0))
    x = torch.randn(3, 5, 8)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), expected)
    x16 = x.to(torch.bfloat16)
    out = norm.to(torch.bfloat16)(x16)
    assert out.dtype == torch.bfloat16 and out.shape == x.shape
    # Computed in float32: the bf16 result is the float32 result rounded once.
    ref = (x16.float() * torch.rsqrt(x16.float().pow(2).mean(-1, keepdim=True) + 1e-6)) * norm.weight.float()
    torch.testing.assert_close(out, ref.to(torch.bfloat16), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_rmsnorm_without_grad_is_bit_identical_to_the_training_path(dtype):
    # No grad needed -> F.rms_norm; training -> the hand-written Function. Generation must not change by a bit.
    norm = RMSNorm(96).to(dtype)
    torch.nn.init.normal_(norm.weight, generator=torch.Generator().manual_seed(0))
    x = 4 * torch.randn(3, 7, 96, generator=torch.Generator().manual_seed(1)).to(dtype)
    with torch.no_grad():
        fast = norm(x)
    trained = norm(x.requires_grad_())
    assert trained.grad_fn is not None and trained.grad_fn.name().endswith("_RMSNormFunctionBackward")
    assert fast.dtype == dtype and torch.equal(fast, trained.detach())
    assert torch.equal(fast, _RMSNormFunction.apply(x.detach(), norm.weight.detach(), norm.eps))


def test_rmsnorm_hand_written_backward():
    """The closed-form backward equals autograd's derivative of the plain formula (gradcheck in float64, and
    against autograd in float32 with a non-contiguous input, as QK-norm sees), and skips gradients not asked for."""
    norm = RMSNorm(8, eps=1e-6).double()
    torch.nn.init.normal_(norm.weight, 1.0, 0.3)
    x = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(norm, (x,))

    norm = norm.float()
    x = torch.randn(4, 2, 6, 8).transpose(1, 2).requires_grad_()
    grad = torch.randn(4, 6, 2, 8)
    gx, gw = torch.autograd.grad(norm(x), (x, norm.weight), grad)
    reference = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    rx, rw = torch.autograd.grad(reference, (x, norm.weight), grad)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, rw)

    frozen = torch.randn(3, 8, requires_grad=True)
    norm.weight.requires_grad_(False)
    norm(frozen).sum().backward()
    assert frozen.grad is not None and norm.weight.grad is None


def test_rope_scores_depend_only_on_relative_position(make_config):
    config = make_config()
    rope = RotaryEmbedding(config)
    q, k = torch.randn(1, 1, 1, config.head_dim), torch.randn(1, 1, 1, config.head_dim)

    def score(m: int, n: int) -> torch.Tensor:
        cos_m, sin_m = rope(torch.tensor([[m]]))
        cos_n, sin_n = rope(torch.tensor([[n]]))
        return (apply_rotary(q, cos_m, sin_m) * apply_rotary(k, cos_n, sin_n)).sum()

    torch.testing.assert_close(score(7, 3), score(104, 100), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(score(0, 0), (q * k).sum(), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(score(7, 3), score(7, 4))


def test_rope_preserves_norm_and_keeps_float32_table_under_bf16(make_config):
    config = make_config()
    rope = RotaryEmbedding(config).to(torch.bfloat16)
    cos, sin = rope(torch.arange(200)[None])
    assert cos.dtype == torch.float32 and cos.shape == (1, 200, config.head_dim)
    x = torch.randn(1, 2, 200, config.head_dim)
    torch.testing.assert_close(apply_rotary(x, cos, sin).norm(dim=-1), x.norm(dim=-1))
