"""Weight bytes in other formats: exact for each stated layout."""

import math

import pytest

from profiler.arch import from_size
from profiler.formulas import memory as M
from profiler.formulas.params import count_params, mlp_matrices
from profiler.formulas.quantization import (
    FULL_PRECISION,
    WEIGHT_FORMATS,
    quantized_matrices,
    weight_bytes_by_format,
    weight_bytes_in,
)
from profiler.source import resolve


@pytest.mark.parametrize("fmt, rows, columns, size", [
    ("q4_0", 4, 64, 4 * 2 * 18),          # two 18-byte blocks per row
    ("q4_0", 1, 33, 2 * 18),              # the last block padded
    ("q8_0", 2, 32, 2 * 34),
    ("int4_g128", 8, 256, 8 * (256 // 2 + 2 * (2 + 0.5))),  # 4 bits + per group an fp16 scale and a 4-bit zero
    ("int8", 3, 10, 3 * (10 + 2)),
    ("fp8", 3, 10, 30 + 4),
    ("bfloat16", 3, 10, 60),
])
def test_matrix_sizes_by_hand(fmt, rows, columns, size):
    assert WEIGHT_FORMATS[fmt].matrix_size(rows, columns) == size


@pytest.mark.parametrize("name", ["tiny", "llama_7b", "mixtral_8x7b", "deepseek_v3", "gpt2"])
def test_the_quantized_matrices_are_the_layers_weights(name):
    arch = resolve(name).arch
    counts = count_params(arch)
    quantized = sum(c * r * k for c, r, k in quantized_matrices(arch))
    rest = counts.total - quantized
    router = counts.components["router"]
    biases_and_norms = counts.components["norms"] + (counts.components["attention"] + counts.components["mlp"]
                                                     - quantized)
    assert rest == counts.components["embeddings"] + counts.components["head"] + router + biases_and_norms
    assert 0 <= biases_and_norms < 0.01 * counts.total  # norms, biases, QK/MLA norms only


def test_totals_and_full_precision():
    arch = resolve("llama_7b").arch
    total = count_params(arch).total
    for fmt in FULL_PRECISION:
        assert weight_bytes_in(arch, fmt) == M.weight_bytes(total, fmt)
    table = weight_bytes_by_format(arch)
    q4 = table["q4_0"]
    matrices = sum(c * r * k for c, r, k in quantized_matrices(arch))
    assert q4["bytes"] == (total - matrices) * 2 + matrices * 18 // 32  # every row of Llama is a multiple of 32
    assert table["float32"]["bytes"] / table["int8"]["bytes"] == pytest.approx(3.85, abs=0.01)  # not quite 4x
    with pytest.raises(ValueError, match="weight format='int3' is not one of"):
        weight_bytes_in(arch, "int3")


def test_kv_cache_in_fp8():
    arch = from_size("small")
    assert M.kv_cache_bytes(arch, 2, 100, "float8") * 2 == M.kv_cache_bytes(arch, 2, 100, "bfloat16")
    with pytest.raises(ValueError, match="kv dtype='int2'"):
        M.kv_cache_bytes(arch, 2, 100, "int2")


@pytest.mark.parametrize("name", ["tiny", "llama_7b", "phi3_mini_4k", "gemma2_2b", "olmo2_1b", "granite_3.0_2b",
                                  "falcon_7b", "qwen1.5_moe_a2.7b", "deepseek_v2_lite", "qwen3_30b_a3b"])
def test_the_mlp_matrices_are_the_modules(name):
    """`mlp_matrices` names and shapes each layer's MLP matrices as the module stores them: Phi-3's one
    gate_up_proj, DeepSeek's shared experts as one MLP n_shared times as wide (2-D tensors, by name); the routed
    experts' stacked tensors hold `count` matrices each, all of their numbers."""
    pytest.importorskip("transformers")
    source = resolve(name) if name == "tiny" else resolve(name).scaled_down()
    module = source.build("meta")
    layers = module.model.layers if hasattr(module, "model") else module.transformer.h
    groups = [g for g in source.arch.layer_groups for _ in range(g.count)]
    h = source.arch.hidden_size
    for layer, group in zip(layers, groups, strict=True):
        matrices = mlp_matrices(group.mlp, h)
        tensors = {n.removesuffix(".weight"): tuple(p.shape) for n, p in layer.mlp.named_parameters()
                   if not n.endswith("bias") and n not in ("gate.weight", "shared_expert_gate.weight")}
        stacks = {n: shape for n, shape in tensors.items() if len(shape) == 3}
        falcon = {"dense_h_to_4h": "up_proj", "dense_4h_to_h": "down_proj"}
        named = sorted((falcon.get(n, n.split(".")[-1]), shape) for n, shape in tensors.items() if len(shape) == 2)
        assert named == sorted((m.name, (m.rows, m.cols)) for m in matrices if not m.routed)
        routed = [m for m in matrices if m.routed]
        assert {shape[0] for shape in stacks.values()} == {m.count for m in routed}
        assert sum(math.prod(shape) for shape in stacks.values()) == sum(m.count * m.rows * m.cols for m in routed)


def test_phi3_keeps_one_fp8_scale_for_its_fused_gate_up():
    """Phi-3 stores q, k, v as one qkv_proj and gate and up as one gate_up_proj: 4 matrices per layer, so 4 fp32
    per-tensor scales; int8's row scales are the same either way (2I rows)."""
    arch = resolve("phi3_mini_4k").arch  # 32 layers, h 3072, I 8192
    total, layers, h, inter = count_params(arch).total, 32, 3072, 8192
    matrices = layers * h * (3 * h + h + 2 * inter + inter)  # qkv_proj, o_proj, gate_up_proj, down_proj
    assert weight_bytes_in(arch, "fp8") == 2 * (total - matrices) + matrices + layers * 4 * 4
    rows = layers * (3 * h + h + 2 * inter + h)
    assert weight_bytes_in(arch, "int8") == 2 * (total - matrices) + matrices + 2 * rows
