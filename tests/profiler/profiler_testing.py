"""Shared helpers for the profiler tests: the shipped configs, random valid HF-style configs per family and a synthetic
hardware profile. A module of its own name (not conftest): `from conftest import ...` picks whichever conftest.py
pytest loaded first, so a run that collects tests/complexity too could not import these."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from profiler.hardware import HardwareProfile, profile_from_dict
from profiler.source import MODELS_DIR, read_json

SHIPPED = ("llama_7b", "mistral_7b", "mixtral_8x7b", "qwen3_0.6b", "deepseek_v3", "gpt2", "gemma_2b", "gemma2_2b",
           "gemma3_1b", "phi3_mini_4k", "qwen1.5_moe_a2.7b", "qwen3_30b_a3b", "olmoe_1b_7b", "olmo2_1b",
           "deepseek_v2_lite", "falcon_7b", "pythia_1b", "granite_3.0_2b", "starcoder2_3b")


def shipped_config(name: str) -> dict:
    return read_json(MODELS_DIR / f"{name}.json")


class HypothesisChoices:
    """The three `random.Random` methods the config generators use, drawn through hypothesis so that failing
    configs shrink to a minimal example."""

    def __init__(self, draw: st.DrawFn):
        self.draw = draw

    def choice(self, options: list) -> object:
        return self.draw(st.sampled_from(options))

    def randint(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def random(self) -> float:
        return self.draw(st.floats(0.0, 1.0, exclude_max=True))


@st.composite
def hf_configs(draw: st.DrawFn, family: str) -> dict:
    """Hypothesis strategy: small valid config.json dicts of `family`."""
    return random_hf_config(family, HypothesisChoices(draw))


def random_hf_config(family: str, rng: random.Random | HypothesisChoices) -> dict:
    """A small random valid config.json dict of `family`, drawn from `rng`."""
    kv_heads = rng.choice([1, 2, 4])
    heads = kv_heads * rng.choice([1, 2, 3])
    head_dim = rng.choice([4, 8, 16])
    hidden = heads * rng.choice([4, 8, 12])  # transformers insists on heads dividing hidden_size
    common = dict(vocab_size=rng.randint(11, 97), hidden_size=hidden, intermediate_size=rng.choice([8, 20, 36, 64]),
                  num_hidden_layers=rng.randint(1, 4), num_attention_heads=heads, num_key_value_heads=kv_heads,
                  tie_word_embeddings=rng.random() < 0.5, max_position_embeddings=64)
    if family == "gpt2":
        return dict(model_type="gpt2", vocab_size=common["vocab_size"], n_embd=heads * head_dim, n_head=heads,
                    n_layer=common["num_hidden_layers"], n_positions=rng.choice([16, 32]),
                    n_inner=rng.choice([None, 40]))
    if family in ("llama", "mistral", "qwen2", "qwen3"):
        extra = dict(head_dim=head_dim)
        if family == "llama":
            extra.update(attention_bias=rng.random() < 0.5, mlp_bias=rng.random() < 0.5)
        if family == "qwen3":
            extra.update(attention_bias=rng.random() < 0.5)
        if family == "qwen2":
            extra = {}  # qwen2 derives head_dim from hidden_size / heads
            common["hidden_size"] = heads * head_dim
        if family == "mistral":
            extra.update(sliding_window=rng.choice([None, 4]))
        return dict(model_type=family, **common, **extra)
    if family == "mixtral":
        experts = rng.randint(2, 5)
        return dict(model_type="mixtral", **common, head_dim=head_dim, num_local_experts=experts,
                    num_experts_per_tok=rng.randint(1, experts))
    if family == "deepseek_v3":
        experts = rng.randint(2, 6)
        layers = rng.randint(1, 4)
        return dict(model_type="deepseek_v3", **{**common, "num_key_value_heads": heads, "num_hidden_layers": layers},
                    moe_intermediate_size=rng.choice([8, 12]), n_routed_experts=experts,
                    num_experts_per_tok=rng.randint(1, experts), n_group=1, topk_group=1,
                    n_shared_experts=rng.randint(0, 2), first_k_dense_replace=rng.randint(0, layers),
                    q_lora_rank=rng.choice([None, 12]), kv_lora_rank=rng.choice([8, 16]),
                    qk_nope_head_dim=rng.choice([4, 8]), qk_rope_head_dim=rng.choice([2, 4]), v_head_dim=rng.choice([4, 8]))
    if family in ("gemma", "gemma2", "gemma3_text"):
        layers = common["num_hidden_layers"]
        extra = dict(head_dim=head_dim, attention_bias=rng.random() < 0.5,
                     sliding_window=rng.choice([3, 8]))
        if family != "gemma" and rng.random() < 0.5:
            extra["layer_types"] = [rng.choice(["full_attention", "sliding_attention"]) for _ in range(layers)]
        elif family == "gemma3_text":
            extra["sliding_window_pattern"] = rng.choice([2, 3, 6])
        if family == "gemma2":
            extra.update(attn_logit_softcapping=rng.choice([None, 50.0]),
                         final_logit_softcapping=rng.choice([None, 30.0]))
        return dict(model_type=family, **common, **extra)
    if family == "phi3":
        return dict(model_type="phi3", **common, sliding_window=rng.choice([None, 5]), pad_token_id=None,
                    eos_token_id=2, partial_rotary_factor=rng.choice([1.0, 0.5]))
    if family in ("qwen2_moe", "qwen3_moe"):
        layers, experts = common["num_hidden_layers"], rng.randint(2, 5)
        extra = dict(head_dim=head_dim, moe_intermediate_size=rng.choice([8, 12]), num_experts=experts,
                     num_experts_per_tok=rng.randint(1, experts), decoder_sparse_step=rng.randint(1, 2),
                     mlp_only_layers=[i for i in range(layers) if rng.random() < 0.3])
        if family == "qwen2_moe":
            extra.update(shared_expert_intermediate_size=rng.choice([8, 16]), qkv_bias=rng.random() < 0.5,
                         use_sliding_window=rng.random() < 0.5, sliding_window=4, max_window_layers=rng.randint(0, 4))
        else:
            extra.update(attention_bias=rng.random() < 0.5)
        return dict(model_type=family, **common, **extra)
    if family in ("olmoe", "olmo2"):
        extra = dict(attention_bias=rng.random() < 0.5)
        if family == "olmoe":
            experts = rng.randint(2, 5)
            extra.update(num_experts=experts, num_experts_per_tok=rng.randint(1, experts))
        else:
            extra.update(head_dim=head_dim)
        return dict(model_type=family, **common, **extra)
    if family == "deepseek_v2":
        experts, layers = rng.randint(2, 6), rng.randint(1, 4)
        return dict(model_type="deepseek_v2",
                    **{**common, "num_key_value_heads": heads, "num_hidden_layers": layers},
                    moe_intermediate_size=rng.choice([8, 12]), n_routed_experts=experts,
                    num_experts_per_tok=rng.randint(1, experts), n_shared_experts=rng.randint(1, 2),
                    first_k_dense_replace=rng.randint(0, layers), attention_bias=rng.random() < 0.5,
                    q_lora_rank=rng.choice([None, 12]), kv_lora_rank=rng.choice([8, 16]),
                    qk_nope_head_dim=rng.choice([4, 8]), qk_rope_head_dim=rng.choice([2, 4]),
                    v_head_dim=rng.choice([4, 8]), topk_method="greedy")
    if family == "falcon":
        new = rng.random() < 0.5
        parallel = True if new else rng.random() < 0.5
        extra = dict(new_decoder_architecture=new, parallel_attn=parallel, bias=rng.random() < 0.5,
                     multi_query=rng.random() < 0.5, ffn_hidden_size=rng.choice([None, 24]))
        if new:
            extra.update(num_kv_heads=kv_heads, num_ln_in_parallel_attn=rng.choice([1, 2]))
        return dict(model_type="falcon", vocab_size=common["vocab_size"], hidden_size=heads * head_dim,
                    num_attention_heads=heads, num_hidden_layers=common["num_hidden_layers"],
                    tie_word_embeddings=common["tie_word_embeddings"], **extra)
    if family == "gpt_neox":
        return dict(model_type="gpt_neox", **{**common, "hidden_size": heads * head_dim},
                    use_parallel_residual=rng.random() < 0.5, attention_bias=rng.random() < 0.5,
                    rotary_pct=rng.choice([0.25, 0.5, 1.0]))
    if family == "granite":
        return dict(model_type="granite", **common, attention_bias=rng.random() < 0.5, mlp_bias=rng.random() < 0.5,
                    embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=0.015625,
                    logits_scaling=8.0)
    if family == "starcoder2":
        return dict(model_type="starcoder2", **{**common, "hidden_size": heads * head_dim},
                    use_bias=rng.random() < 0.5, sliding_window=rng.choice([None, 4]))
    raise ValueError(family)


def synthetic_profile(flops: float = 1e11, bandwidth: float = 1e10, overhead: float = 1e-5,
                      memory_bytes: int = 2**34, by_size: list | None = None) -> HardwareProfile:
    """One float32 matmul point at rate `flops` (so every shape gets it; spread ×0.5 / ×2), flat bandwidth
    (spread ×0.5 / ×2), per-op overhead `overhead`."""
    return profile_from_dict({
        "name": "synthetic", "device_type": "cpu", "description": "made up for tests",
        "peak_flops_per_s": {"float32": 2 * flops}, "memory_bandwidth_bytes_per_s": bandwidth,
        "memory_bytes": [memory_bytes], "power_watts": 10, "op_overhead_s": overhead,
        "efficiency": {"calibrated": False, "source": "made up",
                       "matmul": [{"dtype": "float32", "shape": "test", "m": 64, "n": 64, "k": 64,
                                   "flops_per_s": {"min": flops / 2, "median": flops, "max": 2 * flops}}],
                       "elementwise_bytes_per_s": {"min": bandwidth / 2, "median": bandwidth, "max": 2 * bandwidth},
                       "elementwise_by_size": by_size or []},
        "sources": {"peak_flops_per_s": "made up"},
    })
