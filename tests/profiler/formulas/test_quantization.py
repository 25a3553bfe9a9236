"""Weight bytes in other formats: exact for each stated layout."""

import pytest

from profiler.arch import from_size
from profiler.formulas import memory as M
from profiler.formulas.params import count_params
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
