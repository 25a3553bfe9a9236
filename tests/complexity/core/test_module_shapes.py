import pytest
import torch

from complexity.core.attention import ComplexityAttention
from complexity.core.layer import ComplexityDecoderLayer
from complexity.core.mlp import SwiGLUMLP
from complexity.core.normalization import RMSNorm
from complexity.core.rotary import RotaryEmbedding
from complexity.core.token_routed_mlp import TokenRoutedMLP, route_tokens


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_module_keeps_shape_and_dtype(make_config, dtype):
    config = make_config()
    x = torch.randn(2, 5, config.hidden_size, dtype=dtype)
    ids = torch.randint(0, config.vocab_size, (2, 5))
    cos, sin = RotaryEmbedding(config)(torch.arange(5).expand(2, 5))
    modules = {
        "norm": (RMSNorm(config.hidden_size), lambda m: m(x)),
        "swiglu": (SwiGLUMLP(config), lambda m: m(x)),
        "routed": (TokenRoutedMLP(config), lambda m: m(x, ids)),
        "attention": (ComplexityAttention(config, 0), lambda m: m(x, cos, sin, None)),
        "layer": (ComplexityDecoderLayer(config, 0), lambda m: m(x, cos, sin, None, None, route_tokens(ids, config))),
    }
    for name, (module, call) in modules.items():
        for p in module.parameters():
            torch.nn.init.normal_(p, std=0.05)
        out = call(module.to(dtype))
        assert out.shape == x.shape and out.dtype == dtype, name
        assert torch.isfinite(out).all(), name
