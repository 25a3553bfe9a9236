"""compare on a tiny grid with an injected measure function: rows, errors, memory check, JSON and plot files."""

from __future__ import annotations

import json

import pytest
from profiler_testing import synthetic_profile

from profiler.arch import from_size
from profiler.checks.compare import (
    compare_points,
    generation_timing,
    grid,
    largest_training_point,
    point_workloads,
    positions_needed,
    predict_point,
    predicted_peak,
    prediction_error,
    summary,
)
from profiler.formulas import memory as M
from profiler.formulas.params import count_params
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
    with pytest.raises(ValueError, match="modes='forward,generate': each must be one of"):
        grid([tiny], [1], [8], ["forward", "generate"])


def test_a_measured_call_starts_from_the_timelines_state():
    """A training call starts where the previous step ended (weights, AdamW state, its gradients, the zoo's RoPE
    table: memory.training_state_bytes, the timeline's between_steps plus the gradients); a forward call from the
    loaded model (memory.model_state_bytes)."""
    tiny = resolve("tiny")
    params, rope = count_params(tiny.arch).total, M.rope_table_bytes(tiny.arch)
    for dtype in ("float32", "bfloat16"):
        peak, start = predicted_peak(tiny, "train", 2, 32, dtype, "cpu")
        timeline = M.training_timeline(tiny.arch, 2, 32, dtype, device="cpu")
        assert peak == max(timeline.values())
        assert start == M.training_state_bytes(tiny.arch, dtype, gradients=True) == 16 * params + rope
        assert start == timeline["between_steps"] + params * M.dtype_bytes(dtype)
    peak, start = predicted_peak(tiny, "forward", 2, 32, "bfloat16", "cpu")
    assert peak == M.forward_peak_bytes(tiny.arch, 2, 32, "bfloat16")
    assert start == M.model_state_bytes(tiny.arch, "bfloat16") == 2 * params + rope
    # decode: the generate call of new_tokens + 1 tokens after the prompt that its time comes from
    peak, start = predicted_peak(tiny, "decode", 2, 32, "float32", "cpu", new_tokens=5)
    assert peak == max(M.generate_timeline(tiny.arch, 2, 32, 6, "float32").values())
    assert start == M.model_state_bytes(tiny.arch, "float32")


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

    assert main(["compare", "--modes", "forward,generate"]) == 2
    assert "modes" in capsys.readouterr().err


def test_generation_timing_prefill_as_is_decode_per_token():
    generate, prefill = {"min_s": 1.0, "p50_s": 1.5, "mean_s": 9.0}, {"min_s": 0.2, "p50_s": 0.3, "mean_s": 9.0}
    assert generation_timing("prefill", generate, prefill, 4) == {"min_s": 0.2, "p50_s": 0.3}
    assert generation_timing("decode", generate, prefill, 4) == pytest.approx({"min_s": 0.2, "p50_s": 0.3})
    with pytest.raises(ValueError, match="decode time per token .* is not positive"):
        generation_timing("decode", {"min_s": 0.1, "p50_s": 1.5}, prefill, 4)
    with pytest.raises(ValueError, match="mode='forward' must be one of"):
        generation_timing("forward", generate, prefill, 4)


def test_decode_points_cover_their_contexts_and_predict_their_mean():
    assert point_workloads("decode", 4, 32, new_tokens=3) == [Workload("decode", 4, c) for c in (32, 33, 34)]
    assert point_workloads("prefill", 4, 32, new_tokens=3) == [Workload("prefill", 4, 32)]
    assert positions_needed(["forward", "train"], 128, 16) == 128 and positions_needed(["decode"], 128, 16) == 145
    profile, tiny = synthetic_profile(), resolve("tiny")
    steps = [predict(tiny.arch, profile, Workload("decode", 1, c), "likely") for c in (32, 33, 34)]
    mean = predict_point(tiny, profile, "decode", 1, 32, "float32", "likely", new_tokens=3)
    assert mean["seconds"] == pytest.approx(sum(r["seconds"] for r in steps) / 3)
    assert mean["bound"] == steps[1]["bound"] and set(mean["seconds_by_phase"]) == set(steps[0]["seconds_by_phase"])
    forward = predict_point(tiny, profile, "forward", 1, 32, "float32", "likely")
    assert forward == predict(tiny.arch, profile, Workload("forward", 1, 32), "likely")  # one workload: as it is


def test_compare_rows_of_prefill_and_decode(tmp_path):
    profile, tiny = synthetic_profile(), resolve("tiny")
    points = grid([tiny], [1, 4], [16], ["prefill", "decode"])
    calls = []

    def fake_measure(source, mode, batch, seq_len):  # a decode row carries its generate call's peak
        calls.append(mode)
        seconds = 2 * predict_point(source, profile, mode, batch, seq_len, "float32", "optimistic", 5)["seconds"]
        if mode == "prefill":
            return {"min_s": seconds, "p50_s": seconds}
        peak = predicted_peak(source, mode, batch, seq_len, "float32", "cpu", 5)[0]
        return {"min_s": seconds, "p50_s": seconds, "peak_bytes": 2 * peak, "start_bytes": 0}

    rows = compare_points(points, profile, fake_measure, new_tokens=5)
    assert calls == ["prefill", "prefill", "decode", "decode"]
    assert [r["mode"] for r in rows] == calls and all(r["error"] == pytest.approx(-0.5) for r in rows)
    assert all(("memory" in r) == (r["mode"] == "decode") for r in rows)
    assert [r["memory"]["error"] for r in rows if r["mode"] == "decode"] == [pytest.approx(-0.5)] * 2
    assert summary(rows)["memory_max_abs_error"] == pytest.approx(0.5)
    first, last = (predict(tiny.arch, profile, Workload("decode", 4, c), "optimistic")["seconds"] for c in (16, 20))
    assert first < rows[-1]["predicted_s"] < last  # per token: the mean of the steps at contexts 16 .. 20
    report = write_outputs({"hardware": profile.name, "statistic": "min", "new_tokens": 5, "environment": {},
                            "summary": summary(rows), "rows": rows}, profile, points, tmp_path / "out")
    assert (tmp_path / "out" / "predicted_vs_measured.png").stat().st_size > 0
    from profiler.render.comparison import render_table
    text = render_table(report)
    assert "decode   " in text and "mean over 5 steps" in text


def test_the_harness_times_prefill_and_decode_within_one_generate():
    from profiler.checks.compare import harness_measure_fn
    from profiler.measuring.device import get_device

    measure, tiny = harness_measure_fn(get_device("cpu"), warmup=0, repeats=2, new_tokens=4), resolve("tiny")
    measure(tiny, "train", 1, 8)  # leaves its gradients on the shared module: the next points must free them
    prefill, decode = measure(tiny, "prefill", 1, 8), measure(tiny, "decode", 1, 8)
    assert decode["start_bytes"] == pytest.approx(M.model_state_bytes(tiny.arch, "float32"), rel=0.02)
    assert set(prefill) == {"min_s", "p50_s"} and min(*prefill.values(), decode["min_s"], decode["p50_s"]) > 0
    assert decode["peak_bytes"] > decode["start_bytes"] > 0  # the generate call's own peak


def test_cli_takes_the_generation_modes_and_new_tokens(monkeypatch, tmp_path):
    from profiler.cli import main
    from profiler.commands import compare as command

    seen = {}

    def stop(points, *args, **kwargs):
        seen.update(points=points, new_tokens=kwargs["new_tokens"])
        raise SystemExit(0)

    monkeypatch.setattr(command, "calibrated_comparison", stop)
    with pytest.raises(SystemExit):
        main(["compare", "--sizes", "tiny", "--batches", "1,4", "--seq-lens", "32", "--modes", "prefill,decode",
              "--new-tokens", "3", "--out", str(tmp_path / "out")])
    assert [(mode, b) for _, mode, b, _ in seen["points"]] == [("prefill", 1), ("prefill", 4), ("decode", 1),
                                                                ("decode", 4)]
    assert seen["new_tokens"] == 3
