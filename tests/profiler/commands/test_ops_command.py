"""`python -m profiler ops`: runs on tiny (forward JSON, train table, prefill and decode) and refuses bad arguments
with exit 2."""

from __future__ import annotations

import json

import pytest

from profiler.checks.ops import CATEGORIES
from profiler.cli import main

FAST = ["--seq-len", "16", "--repeats", "1", "--warmup", "1", "--hardware", "cpu_generic"]


def test_ops_forward_json_on_tiny(capsys):
    assert main(["ops", "tiny", *FAST, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["workload"] == {"mode": "forward", "batch": 1, "seq_len": 16, "dtype": "float32",
                                  "new_tokens": None}
    assert result["environment"]["threads"] == 1 and result["environment"]["clock"] == "cpu"
    by = {row["category"]: row for row in result["categories"]}
    assert {"matmul", "attention", "norm"} <= set(by) <= set(CATEGORIES)
    assert by["matmul"]["predicted_s"] > 0 and by["matmul"]["measured_s"] > 0
    totals = result["totals"]
    assert totals["profiled_ops_s"] == pytest.approx(sum(row["measured_s"] for row in result["categories"]))
    assert totals["predicted_s"] == pytest.approx(sum(row["predicted_s"] for row in result["categories"]))


def test_ops_train_table_on_tiny(capsys):
    assert main(["ops", "tiny", "--mode", "train", "--clock", "wall", *FAST, "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "tiny: train, batch 1 x seq_len 16" in out and "wall clock" in out
    for category in ("matmul", "optimizer", "loss"):
        assert f"\n  {category} " in out
    assert "the profiler's overhead" in out


@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_ops_generation_modes_on_tiny(capsys, mode):
    """prefill: generate of one token; decode: one step, (generate of n + 1 tokens − prefill) ÷ n, predicted as the
    mean over its n contexts; both with the same categories on either side."""
    assert main(["ops", "tiny", "--mode", mode, "--new-tokens", "3", *FAST, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["workload"]["mode"] == mode and result["workload"]["new_tokens"] == (3 if mode == "decode" else None)
    by = {row["category"]: row for row in result["categories"]}
    assert by["matmul"]["predicted_s"] > 0 and by["matmul"]["measured_s"] > 0
    assert result["totals"]["unprofiled_mean_s"] > 0
    assert result["totals"]["predicted_s"] == pytest.approx(sum(row["predicted_s"] for row in result["categories"]))


@pytest.mark.parametrize("argv, flag", [
    (["--repeats", "0"], "--repeats"),
    (["--seq-len", "100000"], "--seq-len"),
    (["--mode", "generate"], "--mode"),
    (["--mode", "decode", "--seq-len", "2040"], "--new-tokens"),
    (["--mode", "prefill", "--new-tokens", "0"], "--new-tokens"),
    (["--hardware", "no_such_device"], "--hardware"),
    (["--top", "-1"], "--top"),
    (["--threads", "nan"], "--threads"),
    (["--clock", "cpu", "--device", "cuda:x"], "--device"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, flag):
    assert main(["ops", "tiny", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("profiler ops: error:") and flag in lines[0]


def test_without_hardware_the_device_is_calibrated_for_the_workload(capsys, monkeypatch):
    """The calibration path (`compare`'s two steps) is taken when --hardware is absent; its quick form here."""
    from profiler.measuring import calibration, model_shapes

    calls = []
    real = calibration.calibrate

    def quick_calibrate(device, **kwargs):
        calls.append(("calibrate", kwargs["only_dtypes"]))
        return real(device, quick=True, **kwargs)

    def own_shapes(profile, workloads, device, repeats):
        calls.append(("shapes", [(arch.name, w.mode, w.seq_len) for arch, w in workloads]))
        return profile

    monkeypatch.setattr(calibration, "calibrate", quick_calibrate)
    monkeypatch.setattr(model_shapes, "calibrate_for_workloads", own_shapes)
    assert main(["ops", "tiny", "--seq-len", "16", "--repeats", "1", "--warmup", "0", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["hardware"] == "ops_calibrated"
    assert calls == [("calibrate", ("float32",)), ("shapes", [("tiny", "forward", 16)])]


def test_a_device_the_profiler_cannot_time_per_op_is_refused(capsys):
    assert main(["ops", "tiny", "--device", "mps", "--hardware", "cpu_generic"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "device='mps'" in err and "cpu or cuda" in err
