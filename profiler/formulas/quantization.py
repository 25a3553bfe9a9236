"""Bytes of the weights stored in other formats for inference: 16-bit, fp8, int8 and 4-bit, weight-only.

Each format is a layout stated exactly, so the bytes are exact for that layout: how many bits each weight takes
and what metadata each block of weights carries. Only the decoder layers' matrices are quantized (attention
projections and MLP / expert matrices: the 2-D weights of `AttentionSpec.weight_shapes` and the experts); the
token embedding, an untied LM head, norms, biases and a router stay in the base dtype, as GPTQ and AWQ
checkpoints keep them (llama.cpp quantizes the embedding and head too, with their own types; not modelled).

Blocks run along a matrix row (a weight's input dimension, `in`): a row of `in` weights has ⌈in / block⌉ blocks,
the last one padded (ggml pads too; GPTQ and AWQ need `in` divisible by the group).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from profiler.arch import ArchSpec
from profiler.formulas.memory import dtype_bytes
from profiler.formulas.params import count_params, mlp_matrices


@dataclass(frozen=True)
class WeightFormat:
    """`bits` per weight; per block of `block` weights along a row `block_bits` of metadata (scales, zero points);
    `row_bits` of metadata per matrix row; `matrix_bytes` per matrix; `layout` says whose layout it is."""

    bits: int
    block: int = 0
    block_bits: int = 0
    row_bits: int = 0
    matrix_bytes: int = 0
    layout: str = ""

    def matrix_size(self, rows: int, columns: int) -> int:
        """Bytes of one [rows, columns] matrix in this format, rounded up to a whole byte."""
        blocks = math.ceil(columns / self.block) if self.block else 0
        padded = blocks * self.block if self.block else columns
        row = padded * self.bits + blocks * self.block_bits + self.row_bits
        return math.ceil(rows * row / 8) + self.matrix_bytes


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    "float32": WeightFormat(32, layout="IEEE fp32, every parameter"),
    "bfloat16": WeightFormat(16, layout="bf16, every parameter"),
    "float16": WeightFormat(16, layout="fp16, every parameter"),
    "fp8": WeightFormat(8, matrix_bytes=4, layout="fp8 E4M3 weights with one fp32 scale per matrix (per-tensor "
                                                  "scaling, as NVIDIA Transformer Engine keeps it)"),
    "int8": WeightFormat(8, row_bits=16, layout="int8 weights with one fp16 scale per output row (symmetric "
                                                "row-wise absmax, as LLM.int8(), Dettmers et al. 2022)"),
    "q8_0": WeightFormat(8, block=32, block_bits=16, layout="ggml Q8_0: blocks of 32 int8 weights and one fp16 "
                                                            "scale, 34 bytes per 32 weights (llama.cpp)"),
    "int4_g128": WeightFormat(4, block=128, block_bits=16 + 4, layout="4-bit weights, per group of 128 an fp16 "
                                                                      "scale and a 4-bit zero point (the AWQ GEMM "
                                                                      "layout; GPTQ adds an int32 g_idx per input "
                                                                      "column)"),
    "q4_0": WeightFormat(4, block=32, block_bits=16, layout="ggml Q4_0: blocks of 32 4-bit weights and one fp16 "
                                                            "scale, 18 bytes per 32 weights (llama.cpp)"),
}
FULL_PRECISION = ("float32", "bfloat16", "float16")  # formats that store every parameter alike


def quantized_matrices(arch: ArchSpec) -> list[tuple[int, int, int]]:
    """(count, rows, columns) of every matrix the formats quantize, stored [out, in]: each layer's attention
    projections (the 2-D weights of `AttentionSpec.weight_shapes`) and MLP matrices (`mlp_matrices`: every
    expert's apart, as the checkpoints store them; a fused gate_up one matrix; shared experts one wider MLP)."""
    h = arch.hidden_size
    matrices = []
    for group in arch.layer_groups:
        for shape in group.attention.weight_shapes(h).values():
            if len(shape) == 2:
                matrices.append((group.count, *shape))
        matrices += [(group.count * m.count, m.rows, m.cols) for m in mlp_matrices(group.mlp, h)]
    return matrices


def weight_bytes_in(arch: ArchSpec, fmt: str, base_dtype: str = "bfloat16") -> int:
    """All weights with the layers' matrices in `fmt` (`WEIGHT_FORMATS`) and every other parameter (embedding,
    untied head, norms, biases, router) in `base_dtype`; the full-precision formats store every parameter alike."""
    if fmt not in WEIGHT_FORMATS:
        raise ValueError(f"weight format={fmt!r} is not one of {list(WEIGHT_FORMATS)}")
    if fmt in FULL_PRECISION:
        return count_params(arch).total * dtype_bytes(fmt)
    layout = WEIGHT_FORMATS[fmt]
    matrices = quantized_matrices(arch)
    quantized = sum(count * rows * columns for count, rows, columns in matrices)
    others = count_params(arch).total - quantized
    return others * dtype_bytes(base_dtype) + sum(count * layout.matrix_size(rows, columns)
                                                  for count, rows, columns in matrices)


def weight_bytes_by_format(arch: ArchSpec, base_dtype: str = "bfloat16") -> dict[str, dict[str, float | int | str]]:
    """Every format's total weight bytes, its bits per parameter overall and its layout (the analyze table)."""
    params = count_params(arch).total
    out = {}
    for name, layout in WEIGHT_FORMATS.items():
        size = weight_bytes_in(arch, name, base_dtype)
        out[name] = {"bytes": size, "bits_per_param": 8 * size / params, "layout": layout.layout}
    return out
