"""The op list: matmul FLOPs equal flops.py's exactly, parameter tensors add up to the parameter count."""

from __future__ import annotations

import pytest
from profiler_testing import shipped_config

from profiler.arch import from_hf_dict, from_size
from profiler.formulas import flops as F
from profiler.formulas.params import count_params, parameter_tensor_sizes
from profiler.predict.ops import (
    Workload,
    backward_op,
    decode_ops,
    forward_ops,
    matmul,
    model_ops,
    split_evenly,
)
from profiler.source import resolve

ZOO = ("tiny", "20m", "small", "base")
HF = ("llama_7b", "mistral_7b", "mixtral_8x7b", "qwen3_0.6b", "gpt2", "gemma_2b", "gemma2_2b", "gemma3_1b",
      "phi3_mini_4k", "qwen1.5_moe_a2.7b", "qwen3_30b_a3b", "olmoe_1b_7b", "olmo2_1b", "falcon_7b", "pythia_1b",
      "granite_3.0_2b", "starcoder2_3b")  # DeepSeek's MLA path is one lumped product


def _arch(name):
    return from_size(name) if name in ZOO else resolve(name).arch


def _by_component(ops):
    total = {}
    for op in ops:
        if op.component:
            total[op.component] = total.get(op.component, 0) + op.flops
    return total


@pytest.mark.parametrize("name", ZOO + HF)
@pytest.mark.parametrize("batch,seq", [(1, 128), (3, 1000)])
def test_forward_matmul_flops_equal_flops_py(name, batch, seq):
    arch = _arch(name)
    expected = F.forward_flops(arch, batch, seq, "causal")
    got = _by_component(forward_ops(arch, batch, seq))
    assert got.get("attention_core", 0) == expected["attention_scores"] + expected["attention_values"]
    for component in ("attention_qkv", "attention_out", "mlp", "router", "lm_head"):
        assert got.get(component, 0) == expected[component], component


@pytest.mark.parametrize("name", ("tiny", "mistral_7b", "gpt2"))
def test_decode_matmul_flops_equal_flops_py(name):
    arch = _arch(name)
    expected = F.decode_flops(arch, 2, 300)
    got = _by_component(decode_ops(arch, 2, 300))
    assert got["attention_core"] == expected["attention_scores"] + expected["attention_values"]
    assert got["lm_head"] == expected["lm_head"] and got["mlp"] == expected["mlp"]


def test_train_matmul_flops_are_three_forwards_plus_half_attention():
    """Backward = 2 x forward for weight matmuls, 2.5 x for the fused attention kernel (it recomputes scores)."""
    arch = from_size("tiny")
    forward = F.forward_flops(arch, 2, 64, "causal")
    ops = model_ops(arch, Workload("train", 2, 64))
    attention = forward["attention_scores"] + forward["attention_values"]
    expected = 3 * sum(forward.values()) + attention // 2
    assert sum(op.flops for op in ops if op.kind in ("matmul", "attention")) == expected


@pytest.mark.parametrize("name", ZOO + HF + ("deepseek_v3", "deepseek_v2_lite"))
def test_parameter_tensors_add_up(name):
    arch = _arch(name)
    assert sum(parameter_tensor_sizes(arch)) == count_params(arch).total


def test_zoo_tiny_has_68_parameter_tensors():
    # embedding + 6 layers x (2 norms, q/k/v/o, q/k norms, 3 stacked expert matrices) + final norm
    assert len(parameter_tensor_sizes(from_size("tiny"))) == 1 + 6 * 11 + 1


def test_matmul_bytes_and_backward_shapes():
    op = matmul("x", 8, 16, 32, 4)
    assert op.flops == 2 * 8 * 16 * 32 and op.bytes == 4 * (8 * 16 + 16 * 32 + 8 * 32)
    dx, dw = backward_op(op)
    assert op.layout == "nt" and dx.layout == "nn" and dw.layout == "tn"
    assert dx.mnk == (8, 32, 16) and dw.mnk == (32, 8, 16)  # nn.Linear: dW = dYᵀ·X
    dx, dw = backward_op(matmul("x", 8, 16, 32, 4, linear=False))
    assert dw.mnk == (16, 8, 32) and dx.layout == "nt"  # x @ W: dW = Xᵀ·dY, dX = dY·Wᵀ


@pytest.mark.parametrize("name", ["tiny", "gemma2_2b", "granite_3.0_2b"])  # plain; soft-capped and scaled logits
def test_prefill_ops_are_the_forward_s_with_the_head_on_the_last_positions(name):
    arch, batch, seq = _arch(name), 3, 16
    forward, prefill = forward_ops(arch, batch, seq), model_ops(arch, Workload("prefill", batch, seq))
    assert [op for op in forward if not op.name.startswith("lm_head")] == \
        [op for op in prefill if not op.name.startswith("lm_head")]  # the final norm still covers every token
    head = {op.name: op for op in prefill if op.name.startswith("lm_head")}
    assert head["lm_head"].mnk == (batch, arch.hidden_size, arch.vocab_size)
    full = {op.name: op for op in forward if op.name.startswith("lm_head")}
    assert set(head) == set(full) and all(head[n].flops * seq == full[n].flops for n in head)
    with pytest.raises(ValueError, match="last_only=True needs with_loss=False"):
        forward_ops(arch, batch, seq, with_loss=True, last_only=True)


def test_split_evenly():
    assert split_evenly(10, 4) == [3, 3, 2, 2] and sum(split_evenly(7, 3)) == 7


def _names(ops):
    return [op.name for op in ops]


def test_structural_features_are_their_own_ops():
    gemma2 = _names(forward_ops(_arch("gemma2_2b"), 1, 16))
    assert {"norm.attention_in", "norm.attention_out", "norm.mlp_in", "norm.mlp_out", "embedding.scale",
            "attention.softcap", "lm_head.softcap"} <= set(gemma2)
    olmo2 = _names(forward_ops(_arch("olmo2_1b"), 1, 16))
    assert "norm.attention_in" not in olmo2 and {"norm.attention_out", "norm.mlp_out"} <= set(olmo2)
    falcon = _names(forward_ops(_arch("falcon_7b"), 1, 16))
    assert "norm.mlp_in" not in falcon and "attention.qkv_proj" in falcon and "attention.q_proj" not in falcon
    phi3 = _names(forward_ops(_arch("phi3_mini_4k"), 1, 16))
    assert "mlp.gate_up_proj" in phi3 and "mlp.gate_proj" not in phi3
    qwen2_moe = forward_ops(_arch("qwen1.5_moe_a2.7b"), 1, 16)
    gate = next(op for op in qwen2_moe if op.name == "mlp.shared_expert_gate")
    assert gate.flops == 24 * 2 * 16 * 2048 and gate.component == "mlp"
    granite = _names(forward_ops(_arch("granite_3.0_2b"), 1, 16))
    assert {"embedding.scale", "residual.scale", "lm_head.scale"} <= set(granite)
    pythia = forward_ops(_arch("pythia_1b"), 1, 16)
    rope = next(op for op in pythia if op.name == "attention.rope")
    assert rope.bytes == 16 * 16 * (8 + 8) * 64 * 10 * 4  # 64 of 256 channels rotated, 10 passes, fp32
    assert "attention.rope" not in _names(forward_ops(from_hf_dict(dict(shipped_config("falcon_7b"), alibi=True)),
                                                      1, 16))
    assert "embedding.scale" in _names(decode_ops(_arch("gemma2_2b"), 1, 8))
