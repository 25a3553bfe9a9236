"""transformers' decoders counted by our counter: nothing unknown, and components matching hand-computed FLOPs."""

from __future__ import annotations

import pytest
import torch

from profiler.counting.attribution import by_component, component_of, param_component
from profiler.counting.counter import count_training_step
from profiler.source import from_config_dict

pytest.importorskip("transformers")

LLAMA = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "tie_word_embeddings": False}
MIXTRAL = {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2,
           "vocab_size": 32000, "tie_word_embeddings": False}


def test_scaled_down_llama_on_meta_matches_hand_counts():
    model = from_config_dict(LLAMA, "llama").scaled_down()  # h 64, 2 layers, 4 heads of 16, MHA, MLP 128, vocab 256
    batch, seq = 1, 32
    counts = count_training_step(model.build("meta"), torch.zeros(batch, seq, dtype=torch.long, device="meta"))
    assert counts.unknown == {}
    forward = by_component(counts, "forward")
    tokens = batch * seq
    assert forward["attention_qkv"] == 2 * 2 * tokens * 64 * 3 * 64
    assert forward["attention_out"] == 2 * 2 * tokens * 64 * 64
    assert forward["attention_core"] == 2 * 4 * batch * 4 * seq * seq * 16
    assert forward["mlp"] == 2 * 2 * tokens * 3 * 64 * 128
    assert forward["lm_head"] == 2 * tokens * 64 * 256
    assert forward["unattributed"] == forward["router"] == 0
    assert counts.matmul_causal("forward") < counts.matmul("forward")


def test_scaled_down_mixtral_counts_top_k_experts_and_router():
    model = from_config_dict(MIXTRAL, "mixtral").scaled_down()  # 4 experts of width 128, top-2, GQA 4:2
    torch.manual_seed(0)
    counts = count_training_step(model.build("cpu"), torch.randint(0, 256, (1, 16)))
    assert counts.unknown == {}
    forward = by_component(counts, "forward")
    assert forward["mlp"] == 2 * 2 * 16 * 2 * 3 * 64 * 128  # layers · tokens · top-2 · SwiGLU
    assert forward["router"] == 2 * 2 * 16 * 64 * 4


def test_backward_of_each_projection_is_filed_under_its_component():
    """GPT-2's Conv1D projections and Mixtral's router: dX and dW, 2 x forward, under the forward's component."""
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257}
    for config, device in ((gpt2, "meta"), (MIXTRAL, "cpu")):
        torch.manual_seed(0)
        ids = torch.randint(0, 256, (1, 16)).to(device)
        counts = count_training_step(from_config_dict(config, "model").scaled_down().build(device), ids)
        forward, backward = by_component(counts, "forward"), by_component(counts, "backward")
        for name in ("attention_qkv", "attention_out", "mlp", "router", "lm_head"):
            assert backward[name] == 2 * forward[name], name


@pytest.mark.parametrize("path, op, component", [
    ("M.model.layers.0.self_attn.q_proj", "aten.mm", "attention_qkv"),
    ("M.transformer.h.0.attn.c_proj", "aten.addmm", "attention_out"),
    ("M.model.layers.0.self_attn", "aten.bmm", "attention_core"),
    ("M.model.layers.0.mlp.gate", "aten.mm", "router"),
    ("M.model.layers.0.mlp.gate_proj", "aten.mm", "mlp"),
    ("M.lm_head", "aten.mm", "lm_head"),
])
def test_component_of(path, op, component):
    assert component_of(path, op) == component


@pytest.mark.parametrize("name, component", [
    ("model.embed_tokens.weight", "embeddings"), ("transformer.wpe.weight", "embeddings"),
    ("lm_head.weight", "head"), ("model.layers.0.self_attn.q_norm.weight", "attention"),
    ("transformer.h.0.attn.c_attn.bias", "attention"), ("model.layers.1.mlp.gate.weight", "router"),
    ("model.layers.1.mlp.gate.e_score_correction_bias", "router"), ("model.layers.1.mlp.gate_proj.weight", "mlp"),
    ("model.layers.1.mlp.experts.gate_up_proj", "mlp"), ("model.layers.0.input_layernorm.weight", "norms"),
    ("transformer.ln_f.bias", "norms"), ("model.norm.weight", "norms"), ("model.extra.weight", "unattributed"),
])
def test_param_component(name, component):
    assert param_component(name) == component
