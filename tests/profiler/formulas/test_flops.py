import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiler_testing import hf_configs

from profiler.arch import ArchSpec, AttentionSpec, LayerGroup, MLPSpec, from_hf_dict, from_size
from profiler.formulas import flops as F
from profiler.formulas.params import count_params
from profiler.source import resolve

GQA = AttentionSpec(num_heads=2, num_kv_heads=1, head_dim=4, v_head_dim=4)
DENSE = MLPSpec(kind="dense", intermediate_size=16)


def one_layer(attention=GQA, mlp=DENSE, hidden=8, vocab=10, layers=1) -> ArchSpec:
    return ArchSpec(name="hand", model_type="test", vocab_size=vocab, hidden_size=hidden,
                    layer_groups=(LayerGroup(layers, attention, mlp),), tie_word_embeddings=True)


def brute_force_pairs(seq_len, window):
    return sum(1 for q in range(seq_len) for k in range(seq_len) if k <= q and (window is None or q - k < window))


@pytest.mark.parametrize("seq_len", [1, 2, 5, 9])
@pytest.mark.parametrize("window", [None, 1, 2, 4, 20])
def test_attended_pairs(seq_len, window):
    assert F.attended_pairs(seq_len, "causal", window) == brute_force_pairs(seq_len, window)
    assert F.attended_pairs(seq_len, "dense", window) == seq_len * seq_len


def test_hand_computed_gqa_layer():
    """h=8, H=2, KV=1, d=4, SwiGLU I=16, V=10, B=2, S=3 (T=6), worked out by hand."""
    dense = F.forward_flops(one_layer(), batch=2, seq_len=3, convention="dense")
    assert dense == {"attention_qkv": 2 * 6 * (8 * 8 + 8 * 4 * 2),  # 1536
                     "attention_scores": 2 * 2 * 2 * 9 * 4, "attention_values": 2 * 2 * 2 * 9 * 4,  # 288 each
                     "attention_out": 2 * 6 * 8 * 8, "mlp": 2 * 6 * 3 * 8 * 16, "router": 0, "lm_head": 2 * 6 * 8 * 10}
    causal = F.forward_flops(one_layer(), batch=2, seq_len=3, convention="causal")
    assert causal["attention_scores"] == causal["attention_values"] == 2 * 2 * 2 * 6 * 4  # 6 unmasked pairs
    assert {k: v for k, v in causal.items() if not k.startswith("attention_s") and k != "attention_values"} == \
        {k: v for k, v in dense.items() if not k.startswith("attention_s") and k != "attention_values"}


def test_hand_computed_mla():
    """MLA h=8, H=2, d_nope=4, d_rope=2, d_v=4, r_q=3, r_kv=5: per token 8·3 + 3·2·6 + 8·(5+2) + 5·2·(4+4) = 196."""
    mla = AttentionSpec(num_heads=2, num_kv_heads=2, head_dim=6, v_head_dim=4, q_lora_rank=3, kv_lora_rank=5,
                        rope_head_dim=2)
    assert F.qkv_weights(mla, 8) == 196
    forward = F.forward_flops(one_layer(attention=mla), batch=1, seq_len=2, convention="dense")
    assert forward["attention_qkv"] == 2 * 2 * 196
    assert forward["attention_scores"] == 2 * 2 * 4 * 6 and forward["attention_values"] == 2 * 2 * 4 * 4
    assert forward["attention_out"] == 2 * 2 * 2 * 4 * 8


def test_hand_computed_moe_and_token_routed():
    moe = MLPSpec(kind="moe", intermediate_size=5, num_experts=4, experts_per_token=2, num_shared_experts=1,
                  shared_intermediate_size=5)
    forward = F.forward_flops(one_layer(mlp=moe), batch=1, seq_len=3, convention="dense")
    assert forward["mlp"] == 2 * 3 * (2 + 1) * 3 * 8 * 5  # k routed + 1 shared SwiGLU expert
    assert forward["router"] == 2 * 3 * 8 * 4
    routed = MLPSpec(kind="token_routed", intermediate_size=4, num_experts=4)
    forward = F.forward_flops(one_layer(mlp=routed), batch=1, seq_len=3, convention="dense")
    assert forward["mlp"] == 2 * 3 * 3 * 8 * 4 and forward["router"] == 0  # one expert of width I/E, no router


def test_gpt2_matches_the_textbook_layer_formula():
    """Dense GPT-2 layer forward = 24·B·S·h² + 4·B·S²·h (d_ff = 4h, biases excluded), plus the LM head 2·B·S·h·V."""
    arch, b, s, h = resolve("gpt2").arch, 2, 1024, 768
    total = sum(F.forward_flops(arch, b, s, "dense").values())
    assert total == 12 * (24 * b * s * h * h + 4 * b * s * s * h) + 2 * b * s * h * 50257


@pytest.mark.parametrize("name", ["llama_7b", "mixtral_8x7b", "qwen3_0.6b"])
def test_dense_forward_is_two_flops_per_matmul_parameter_plus_attention(name):
    """2·T·(active matmul parameters) + the attention matmuls, for models without biases."""
    arch = resolve(name).arch
    counts, (b, s) = count_params(arch), (2, 64)
    matmul_params = counts.active_compute - counts.components["norms"] \
        - sum(g.count * 2 * g.attention.head_dim for g in arch.layer_groups if g.attention.qk_norm)
    attention = sum(4 * g.count * b * s * s * g.attention.num_heads * g.attention.head_dim for g in arch.layer_groups)
    assert sum(F.forward_flops(arch, b, s, "dense").values()) == 2 * b * s * matmul_params + attention


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen3", "mixtral", "deepseek_v3", "gpt2", "gemma2",
                                    "gemma3_text", "phi3", "qwen2_moe", "qwen3_moe", "olmoe", "olmo2", "deepseek_v2",
                                    "falcon", "gpt_neox", "granite", "starcoder2"])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_causal_never_exceeds_dense_and_equals_it_at_one_token(family, data):
    arch = from_hf_dict(data.draw(hf_configs(family)))
    for s in (1, 2, 7):
        dense, causal = (sum(F.forward_flops(arch, 3, s, c).values()) for c in F.CONVENTIONS)
        assert causal <= dense and (causal == dense) == (s == 1)


def test_training_flops_and_recomputation():
    arch = from_size("tiny")
    forward = F.forward_flops(arch, 2, 16, "causal")
    assert F.backward_flops(forward, "math") == {k: 2 * v for k, v in forward.items()}
    fused = F.backward_flops(forward)  # the fused kernel recomputes Q·Kᵀ: 3 score-shaped products, 2 value-shaped
    assert fused == {**{k: 2 * v for k, v in forward.items()}, "attention_scores": 3 * forward["attention_scores"]}
    fwd, scores = sum(forward.values()), forward["attention_scores"]
    assert F.train_step_flops(arch, 2, 16, "causal", attention_kernel="math") == 3 * fwd
    assert F.train_step_flops(arch, 2, 16, "causal") == 3 * fwd + scores
    selective = forward["attention_scores"] + forward["attention_values"]
    assert F.train_step_flops(arch, 2, 16, "causal", "selective") == 3 * fwd + scores + selective
    assert F.train_step_flops(arch, 2, 16, "causal", "full") == 4 * fwd + scores - forward["lm_head"]
    with pytest.raises(ValueError, match="attention_kernel='flash'"):
        F.backward_flops(forward, "flash")
    with pytest.raises(ValueError, match="recompute='some'"):
        F.recompute_flops(forward, "some")


def test_prefill_and_decode():
    arch = from_size("tiny")
    prefill, forward = F.prefill_flops(arch, 2, 8), F.forward_flops(arch, 2, 8, "causal")
    assert sum(forward.values()) - sum(prefill.values()) == 2 * 2 * 7 * arch.hidden_size * arch.vocab_size
    # the first token, with an empty cache, is a one-token forward pass
    assert F.decode_flops(arch, 3, 0) == F.forward_flops(arch, 3, 1, "dense")
    step = F.decode_flops(arch, 1, 100)
    att = arch.layer_groups[0].attention
    assert step["attention_scores"] == arch.num_layers * 2 * att.num_heads * 101 * att.head_dim


def test_decode_is_capped_by_the_window():
    arch = resolve("mistral_7b").arch
    assert F.decode_flops(arch, 1, 4095) == F.decode_flops(arch, 1, 50_000)
    assert sum(F.decode_flops(arch, 1, 4094).values()) < sum(F.decode_flops(arch, 1, 4095).values())


def test_six_n_and_palm():
    arch = resolve("llama_7b").arch
    n = count_params(arch).active_non_embedding
    assert F.six_n(n, 1000) == 6 * n * 1000
    assert F.palm_flops_per_token(arch, n, 2048) == 6 * n + 12 * 32 * 32 * 128 * 2048
    # PaLM's attention term is the dense convention: 3 x (dense scores + values) per token
    forward = F.forward_flops(arch, 1, 2048, "dense")
    assert 12 * 32 * 32 * 128 * 2048 * 2048 == 3 * (forward["attention_scores"] + forward["attention_values"])


def test_bad_workloads():
    arch = from_size("tiny")
    with pytest.raises(ValueError, match="seq_len=0 must be an integer >= 1"):
        F.forward_flops(arch, 1, 0)
    with pytest.raises(ValueError, match="batch=-1"):
        F.forward_flops(arch, -1, 8)
    with pytest.raises(ValueError, match="convention='sparse'"):
        F.forward_flops(arch, 1, 8, "sparse")


def test_gemma2_alternating_windows_count_each_layer_with_its_own():
    """26 layers, even ones sliding (4096), odd ones global: causal pairs are 13 bands + 13 triangles."""
    arch = resolve("gemma2_2b").arch
    s, w = 8192, 4096
    pairs = 13 * (w * (w + 1) // 2 + (s - w) * w) + 13 * (s * (s + 1) // 2)
    forward = F.forward_flops(arch, 1, s, "causal")
    assert forward["attention_scores"] == 2 * 8 * 256 * pairs == forward["attention_values"]


def test_shared_expert_gate_is_one_h_wide_product_per_token():
    arch = resolve("qwen1.5_moe_a2.7b").arch
    group = arch.layer_groups[0]
    without = dataclasses.replace(group, mlp=dataclasses.replace(group.mlp, shared_expert_gate=False))
    assert F.mlp_weights_per_token(group, 2048) - F.mlp_weights_per_token(without, 2048) == 2048
