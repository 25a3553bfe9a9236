"""compare on a tiny grid with an injected measure function: rows, errors, memory check, JSON and plot files."""

from __future__ import annotations

import json

import pytest
from conftest import synthetic_profile

from profiler.arch import from_size
from profiler.checks.compare import (
    compare_points,
    grid,
    largest_training_point,
    predicted_peak,
    prediction_error,
    summary,
)
from profiler.measuring.model_shapes import net_rate_spread, workload_shapes
from profiler.predict.roofline import predict
from profiler.render.comparison import write_outputs
from profiler.source import resolve
from profiler.workload import Workload


def test_grid_and_prediction_error():
    tiny = resolve("tiny")
    assert grid([tiny], [1, 4], [128], ["forward", "train"]) == [
        (tiny, "forward", 1, 128), (tiny, "forward", 4, 128), (tiny, "train", 1, 128), (tiny, "train", 4, 128)]
    assert prediction_error(1.1, 1.0) == pytest.approx(0.1) and prediction_error(0.5, 1.0) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="measured"):
        prediction_error(1.0, 0.0)
    with pytest.raises(ValueError, match="modes='forward,decode': each must be one of"):
        grid([tiny], [1], [8], ["forward", "decode"])


def test_the_roofline_plot_takes_the_largest_training_point():
    tiny, small = resolve("tiny"), resolve("small")
    points = [(tiny, "forward", 8, 512), (tiny, "train", 1, 128), (small, "train", 2, 64)]
    assert largest_training_point(points) == (small, "train", 2, 64)  # 128 tokens: a tie, the last one wins
    assert largest_training_point(points[:1]) == points[0]


def test_compare_rows_summary_and_files(tmp_path):
    profile = synthetic_profile()
    points = grid([resolve("tiny")], [1], [16, 32], ["forward", "train"])

    def fake_measure(source, mode, batch, seq_len):
        # 20 % slower than the optimistic prediction, and a made-up memory peak
        seconds = 1.2 * predict(source.arch, profile, Workload(mode, batch, seq_len), "optimistic")["seconds"]
        return {"min_s": seconds, "p50_s": seconds, "peak_bytes": 10**9, "start_bytes": 10**8}

    rows = compare_points(points, profile, fake_measure)
    assert len(rows) == 4 and all(r["error"] == pytest.approx(1 / 1.2 - 1) for r in rows)
    assert all("memory" in r for r in rows)
    assert rows[-1]["memory"]["measured_added_bytes"] == 9 * 10**8
    tiny = resolve("tiny")
    for row in rows:
        predicted, start = predicted_peak(tiny, row["mode"], row["batch"], row["seq_len"], "float32", "cpu")
        assert row["memory"]["predicted_peak_bytes"] == predicted
        assert row["memory"]["predicted_added_bytes"] == predicted - start > 0
    stats = summary(rows)
    assert stats["points"] == 4 and stats["median_abs_error"] == pytest.approx(1 - 1 / 1.2)
    assert stats["min_median_abs_error"] == stats["median_abs_error"]
    likely = predict(from_size("tiny"), profile, Workload("forward", 1, 16), "likely")["seconds"]
    assert rows[0]["by_statistic"]["p50"]["predicted_s"] == pytest.approx(likely)  # medians against median rates
    report = write_outputs({"hardware": profile.name, "statistic": "min", "environment": {}, "summary": stats,
                            "rows": rows}, profile, points, tmp_path / "out")
    for name in ("compare.json", "predicted_vs_measured.png", "roofline.png", "calibrated_profile.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert json.loads((tmp_path / "out" / "compare.json").read_text()) == json.loads(json.dumps(report))
    assert report["files"]["json"] == str(tmp_path / "out" / "compare.json")


def test_bad_statistic_names_the_field():
    with pytest.raises(ValueError, match="statistic"):
        compare_points([], synthetic_profile(), lambda *a: {}, statistic="mean")


def test_workload_shapes_collects_every_product():
    matmuls, attention = workload_shapes([(from_size("tiny"), Workload("train", 1, 64))])
    assert ((64, 256, 32000), "nt") in matmuls and all(mnk != (256, 64, 32000) for mnk, _ in matmuls)
    assert ((32000, 64, 256), "tn") in matmuls  # the tied head's weight gradient, dYᵀ·X
    assert set(attention) == {("forward", (256, 64, 64)), ("backward", (256, 64, 64))}  # B·H·S rows, d, keys
    assert attention[("forward", (256, 64, 64))][:6] == (1, 4, 2, 64, 64, 64)


def test_net_rate_spread_removes_the_overhead():
    spread = net_rate_spread(100.0, [2.0, 3.0, 5.0], overhead_s=1.0)  # net 1, 2, 4 seconds
    assert (spread.min, spread.median, spread.max) == (25.0, 50.0, 100.0)
    assert net_rate_spread(100.0, [1.0], overhead_s=0.9).max == 200.0  # floored at half the sample


def test_cli_bad_mode_fails_before_calibrating(capsys):
    from profiler.cli import main

    assert main(["compare", "--modes", "forward,decode"]) == 2
    assert "modes" in capsys.readouterr().err
