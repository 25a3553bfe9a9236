"""Training-time estimator: a hand-computed small case, memory fit, sensitivity, bad input, CLI JSON."""

from __future__ import annotations

import json
import math

import pytest
from profiler_testing import synthetic_profile

from profiler.arch import from_size
from profiler.cli import main
from profiler.formulas.memory import implementation_activation_bytes
from profiler.formulas.params import count_params
from profiler.predict.roofline import predict
from profiler.predict.training import estimate_training
from profiler.workload import Workload


def test_hand_computed_small_case():
    """tiny, 10 sequences x 2 epochs, micro-batch 2 x accumulation 2, 1,000 extra parameters, flat synthetic device
    (1e11 FLOP/s, 1e10 B/s, 10 µs per launch)."""
    arch, profile = from_size("tiny"), synthetic_profile(flops=1e11, bandwidth=1e10, overhead=1e-5)
    report = estimate_training(arch, profile, sequences=10, epochs=2, seq_len=32, micro_batch=2, grad_accum=2,
                               extra_params=1000, prep_sequences_per_s=5.0, eval_sequences=3,
                               with_sensitivity=False)
    assert report["steps_per_epoch"] == 3 and report["steps"] == 6 and report["micro_batches"] == 12  # ⌈10/4⌉ = 3
    assert report["tokens"] == 10 * 2 * 32
    phases = predict(arch, profile, Workload("train", 2, 32))["seconds_by_phase"]
    forward = predict(arch, profile, Workload("forward", 2, 32))["seconds"]
    params = count_params(arch).total + 1000
    micro = phases["forward"] + phases["backward"] + 6 * 1000 * 64 / 1e11  # extra: 6·P·tokens at 1e11 FLOP/s
    gradient_add = 3 * params * 4 / 1e10  # 3 passes of fp32 over all parameters, no launch counted
    optimizer = phases["optimizer"] + (20 * 4 * 1000 / 1e10 + 11 * 1e-5)  # AdamW over the extra tensor
    step = 2 * micro + 1 * gradient_add + optimizer
    likely = report["estimates"]["likely"]
    assert likely["micro_batch_s"] == pytest.approx(micro, rel=1e-12)
    assert likely["step_s"] == pytest.approx(step, rel=1e-12)
    assert likely["training_s"] == pytest.approx(6 * step, rel=1e-12)
    assert likely["data_preparation_s"] == pytest.approx(10 / 5.0)
    assert likely["evaluation_s"] == pytest.approx(2 * math.ceil(3 / 2) * forward, rel=1e-12)
    assert likely["total_s"] == pytest.approx(2.0 + 6 * step + 4 * forward, rel=1e-12)
    # The optimistic end doubles every rate, the conservative end halves it.
    assert report["estimates"]["optimistic"]["training_s"] < likely["training_s"] < \
        report["estimates"]["conservative"]["training_s"]


def test_memory_fit():
    arch = from_size("tiny")
    params = count_params(arch).total
    needed = 16 * params + implementation_activation_bytes(arch, 2, 64, "float32")  # fp32: 4 + 4 + 8 per param
    fits = estimate_training(arch, synthetic_profile(memory_bytes=needed), 4, 1, 64, 2, 1, with_sensitivity=False)
    assert fits["memory"]["total"] == needed and fits["memory"]["fits"] == {str(needed): True}
    short = estimate_training(arch, synthetic_profile(memory_bytes=needed - 1), 4, 1, 64, 2, 1,
                              with_sensitivity=False)
    assert short["memory"]["fits"] == {str(needed - 1): False}


def test_sensitivity_rows_move_the_right_way():
    rows = estimate_training(from_size("tiny"), synthetic_profile(), 64, 1, 128, 2, 4)["sensitivity"]
    by = {row["change"]: row for row in rows}
    assert set(by) == {"baseline", "seq_len / 2", "seq_len x 2", "micro_batch x 2", "micro_batch / 2"}
    assert by["seq_len / 2"]["total_hours"] < by["baseline"]["total_hours"] < by["seq_len x 2"]["total_hours"]
    memory = [by[change]["memory_bytes"] for change in ("micro_batch / 2", "baseline", "micro_batch x 2")]
    assert memory == sorted(memory) and len(set(memory)) == 3
    assert by["micro_batch x 2"]["grad_accum"] == 2 and by["micro_batch / 2"]["grad_accum"] == 8


@pytest.mark.parametrize("field,kwargs", [("sequences", dict(sequences=0)), ("grad_accum", dict(grad_accum=0)),
                                          ("extra_params", dict(extra_params=-1)),
                                          ("prep_sequences_per_s", dict(prep_sequences_per_s=0))])
def test_bad_input_names_the_field(field, kwargs):
    args = {**dict(sequences=4, epochs=1, seq_len=16, micro_batch=1, grad_accum=1), **kwargs}
    with pytest.raises(ValueError, match=field):
        estimate_training(from_size("tiny"), synthetic_profile(), **args)


def test_cli_json_keys(capsys):
    assert main(["estimate-training", "tiny", "--hardware", "apple_m4_pro", "--tokens", "100000", "--seq-len", "256",
                 "--micro-batch", "2", "--grad-accum", "4", "--extra-params", "1e6", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"inputs", "params", "tokens", "steps_per_epoch", "steps", "micro_batches", "estimates", "memory",
            "sensitivity"} <= set(data)
    assert set(data["estimates"]) == {"optimistic", "likely", "conservative"}
    assert {"micro_batch_s", "step_s", "bound", "training_s", "data_preparation_s", "evaluation_s", "total_s",
            "total_hours"} <= set(data["estimates"]["likely"])
    assert data["inputs"]["sequences"] == 391 and data["steps_per_epoch"] == 49  # ⌈100000/256⌉, ⌈391/8⌉
