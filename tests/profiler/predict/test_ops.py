"""The op list: matmul FLOPs equal flops.py's exactly, parameter tensors add up to the parameter count."""

from __future__ import annotations

import pytest

from profiler.arch import from_size
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
HF = ("llama_7b", "mistral_7b", "mixtral_8x7b", "qwen3_0.6b", "gpt2")  # DeepSeek's MLA path is one lumped product


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


@pytest.mark.parametrize("name", ZOO + HF + ("deepseek_v3",))
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


def test_split_evenly():
    assert split_evenly(10, 4) == [3, 3, 2, 2] and sum(split_evenly(7, 3)) == 7
