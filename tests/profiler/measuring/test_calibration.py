"""`python -m profiler calibrate`: --quick writes a profile that loads; spreads from repeats; --base keeps peaks."""

from __future__ import annotations

import json

import pytest

from profiler.cli import main
from profiler.hardware import load_profile
from profiler.measuring.calibration import rate_spread, transformer_shapes
from profiler.measuring.stats import TimingStats


def test_quick_calibration_writes_a_loadable_profile(tmp_path, capsys):
    path = tmp_path / "here.json"
    assert main(["calibrate", "--quick", "--device", "cpu", "--output", str(path), "--name", "here"]) == 0
    assert "GFLOP/s" in capsys.readouterr().out
    profile = load_profile(str(path))
    assert profile.name == "here" and profile.device_type == "cpu" and profile.efficiency.calibrated
    assert {p.dtype for p in profile.efficiency.matmul} >= {"float32"}
    # without --base the peaks are the best measured rates, so no point exceeds its dtype's peak
    for point in profile.efficiency.matmul:
        assert point.flops_per_s.max <= profile.peak(point.dtype)
    assert profile.op_overhead_s > 0 and profile.details["calibration"]["quick"] is True
    assert profile.matmul_flops_per_s("float32", 128, 128, 128) > 0


def test_base_profile_keeps_datasheet_fields(tmp_path, capsys):
    base = load_profile("cpu_generic")
    assert main(["calibrate", "--quick", "--device", "cpu", "--base", "cpu_generic", "--power", "7",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "cpu_generic_calibrated"
    assert data["peak_flops_per_s"] == base.peak_flops_per_s and data["memory_bytes"] == list(base.memory_bytes)
    assert data["power_watts"] == 7 and "--power" in data["sources"]["power_watts"]


def test_base_of_another_device_type_is_an_error(capsys):
    assert main(["calibrate", "--quick", "--device", "cpu", "--base", "nvidia_h100_sxm"]) == 2
    assert "describes a cuda device, this is cpu" in capsys.readouterr().err


def test_rate_spread_maps_slowest_median_fastest():
    spread = rate_spread(100.0, TimingStats.from_samples([1.0, 2.0, 4.0]))
    assert (spread.min, spread.median, spread.max) == (25.0, 50.0, 100.0)


def test_transformer_shapes():
    shapes = dict((label, (m, n, k)) for label, m, n, k in transformer_shapes(tokens=64, hidden=8, vocab=100))
    assert shapes == {"attention_proj": (64, 8, 8), "mlp_up": (64, 24, 8), "mlp_down": (64, 8, 24),
                      "lm_head": (16, 100, 8), "decode": (4, 32, 32)}


def test_mps_calibration_without_mps_is_a_clear_error(capsys, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr("torch.backends.mps.is_available", lambda: False)
    assert main(["calibrate", "--quick", "--device", "mps"]) == 2
    assert "device='mps' is not available here" in capsys.readouterr().err


def test_only_dtypes_limits_the_matmul_points():
    from profiler.measuring.calibration import calibrate

    profile = calibrate("cpu", quick=True, only_dtypes=("float32",))
    assert {p.dtype for p in profile.efficiency.matmul} == {"float32"} and set(profile.peak_flops_per_s) == {"float32"}
    with pytest.raises(ValueError, match=r"only_dtypes=\('float8',\): none of them runs on cpu"):
        calibrate("cpu", quick=True, only_dtypes=("float8",))
