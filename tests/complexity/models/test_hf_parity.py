"""A dense zoo configuration is transformers' Qwen3 (QK-norm on) or Llama (QK-norm off): the zoo's state dict loads
by name, strictly, into the transformers model, and both give the same logits."""

import pytest
import torch

from complexity.config import ComplexityConfig

transformers = pytest.importorskip("transformers")

DENSE = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=32, max_position_embeddings=128, rope_theta=500000.0, rms_norm_eps=1e-5,
             use_token_routed_mlp=False)


def hf_model_for(config: ComplexityConfig) -> torch.nn.Module:
    """transformers' model of the same architecture: Qwen3 with QK-norm, Llama without; the sliding window, when
    set, on every layer (Qwen3's layer_types)."""
    shared = dict(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                  intermediate_size=config.intermediate_size, num_hidden_layers=config.num_hidden_layers,
                  num_attention_heads=config.num_attention_heads, num_key_value_heads=config.num_key_value_heads,
                  head_dim=config.head_dim, max_position_embeddings=config.max_position_embeddings,
                  rms_norm_eps=config.rms_norm_eps, tie_word_embeddings=config.tie_word_embeddings,
                  rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
                  attention_bias=False, attn_implementation="eager")
    if config.use_qk_norm:
        window = config.sliding_window
        hf_config = transformers.Qwen3Config(
            **shared, use_sliding_window=window is not None, sliding_window=window,
            layer_types=["sliding_attention" if window else "full_attention"] * config.num_hidden_layers)
        return transformers.Qwen3ForCausalLM(hf_config)
    assert config.sliding_window is None, "Llama has no sliding window"
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**shared, mlp_bias=False))


@pytest.mark.parametrize("overrides", [{}, {"tie_word_embeddings": False}, {"sliding_window": 5},
                                       {"use_qk_norm": False}])
def test_dense_zoo_model_loads_into_transformers_with_identical_logits(make_model, overrides):
    ours = make_model(**{**DENSE, **overrides})
    torch.manual_seed(1)
    with torch.no_grad():  # norm weights away from 1 so that a missed or misplaced norm shows
        for name, p in ours.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    theirs = hf_model_for(ours.config).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)  # the same names: no mapping
    tied = theirs.lm_head.weight.data_ptr() == theirs.model.embed_tokens.weight.data_ptr()
    assert tied == ours.config.tie_word_embeddings
    ids = torch.randint(0, DENSE["vocab_size"], (2, 16))
    mask = torch.ones_like(ids)
    mask[1, :6] = 0  # left padding
    for attention_mask in (None, mask):
        with torch.no_grad():
            expected = theirs(input_ids=ids, attention_mask=attention_mask).logits
            got = ours(ids, attention_mask=attention_mask).logits
        keep = slice(None) if attention_mask is None else attention_mask.bool()
        # Not bitwise: the RoPE tables differ in their last bits (ours computed in float64, transformers' in float32).
        torch.testing.assert_close(got[keep], expected[keep], rtol=1e-5, atol=1e-5)
