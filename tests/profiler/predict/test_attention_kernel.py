"""`--attention-kernel math|fused`: the math path computes every pair and moves the stored scores; fused does not."""

from __future__ import annotations

import json

import pytest
from profiler_testing import synthetic_profile

from profiler.arch import from_size
from profiler.cli import main
from profiler.predict.ops import MATH_SOFTMAX_PASSES, model_ops
from profiler.predict.roofline import predict
from profiler.workload import Workload


def _attention_bytes(ops) -> int:
    return sum(op.bytes for op in ops if op.name.startswith("attention.") and op.component == "attention_core"
               or op.name.startswith("attention.mask_softmax"))


@pytest.mark.parametrize("mode", ["forward", "train", "decode"])
def test_math_moves_more_bytes_than_fused_and_the_gap_grows_with_length(mode):
    arch = from_size("tiny")
    gaps = []
    for seq_len in (256, 1024):
        workload = Workload(mode, 2, seq_len)
        fused, math = model_ops(arch, workload, "fused"), model_ops(arch, workload, "math")
        assert sum(op.bytes for op in math) > sum(op.bytes for op in fused)
        gaps.append(_attention_bytes(math) - _attention_bytes(fused))
    if mode != "decode":  # scores are S x S per head: 4x the length ratio in bytes, beyond the linear q/k/v terms
        assert gaps[1] > 8 * gaps[0]


def test_math_ops_count_every_pair_and_store_the_scores():
    arch = from_size("tiny")
    att, batch, seq = arch.layer_groups[0].attention, 2, 128
    ops = {op.name: op for op in model_ops(arch, Workload("forward", batch, seq), "math")}
    layers, heads = arch.num_layers, att.num_heads
    scores = batch * heads * seq * seq * layers
    assert ops["attention.scores"].flops == 2 * scores * att.head_dim  # not the causal half
    assert ops["attention.values"].flops == 2 * scores * att.v_head_dim
    assert ops["attention.mask_softmax"].bytes == MATH_SOFTMAX_PASSES * scores * 4  # float32 scores
    assert ops["attention.mask_softmax"].exps == scores
    assert "attention.sdpa" not in ops


def test_mfu_counts_the_model_flops_whatever_the_kernel():
    arch, profile = from_size("tiny"), synthetic_profile()
    workload = Workload("train", 2, 256)
    fused, math = predict(arch, profile, workload), predict(arch, profile, workload, attention_kernel="math")
    assert math["matmul_flops"] == fused["matmul_flops"]
    assert math["seconds"] > fused["seconds"] and math["attention_kernel"] == "math"


def test_bad_kernel_is_a_clear_error():
    with pytest.raises(ValueError, match=r"attention_kernel='flash2' must be one of \['fused', 'math'\]"):
        model_ops(from_size("tiny"), Workload("forward", 1, 16), "flash2")


def test_predict_cli_takes_the_flag(capsys):
    assert main(["predict", "tiny", "--hardware", "apple_m4_pro", "--seq-len", "512", "--attention-kernel", "math",
                 "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["attention_kernel"] == "math" and any(r["name"] == "attention.scores" for r in result["ops"])
