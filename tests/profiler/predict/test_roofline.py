"""Roofline prediction: hand-computed small cases on a synthetic profile, monotonicity, CLI JSON."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from profiler_testing import synthetic_profile

from profiler.arch import from_size
from profiler.cli import main
from profiler.hardware import HostOverheadPoint, Spread, load_profile
from profiler.predict.ops import Op
from profiler.predict.roofline import op_time, predict
from profiler.workload import PHASES, Workload


def test_compute_bound_op_takes_flops_over_rate_plus_overhead():
    profile = synthetic_profile(flops=1e11, bandwidth=1e10, overhead=1e-5)
    op = Op("mm", "forward", "matmul", flops=2 * 10**9, bytes=10**6, launches=3, mnk=(100, 100, 100))
    t = op_time(op, profile, "float32")
    assert t.compute_s == pytest.approx(0.02) and t.memory_s == pytest.approx(1e-4)
    assert t.seconds == pytest.approx(0.02 + 3e-5) and t.bound == "compute"
    assert op_time(op, profile, "float32", "optimistic").seconds == pytest.approx(0.01 + 3e-5)  # rate x 2


def test_memory_bound_and_overhead_bound_ops():
    profile = synthetic_profile(flops=1e11, bandwidth=1e10, overhead=1e-5)
    streaming = Op("add", "forward", "memory", flops=10**6, bytes=10**8, launches=1)
    assert op_time(streaming, profile, "float32").seconds == pytest.approx(0.01 + 1e-5)
    assert op_time(streaming, profile, "float32").bound == "memory"
    tiny = Op("add", "forward", "memory", flops=10, bytes=1000, launches=2)
    assert op_time(tiny, profile, "float32").seconds == pytest.approx(1e-7 + 2e-5)
    assert op_time(tiny, profile, "float32").bound == "overhead"


def test_bandwidth_by_working_set_interpolates_in_log_space():
    table = [{"bytes": 1000, "bytes_per_s": {"min": 1e9, "median": 1e9, "max": 1e9}},
             {"bytes": 100_000, "bytes_per_s": {"min": 1e11, "median": 1e11, "max": 1e11}}]
    profile = synthetic_profile(overhead=0.0, by_size=table)
    # 10,000 bytes per launch is halfway in log size: the geometric mean of the two rates, 1e10 B/s.
    op = Op("add", "forward", "memory", flops=0, bytes=20_000, launches=2)
    assert op_time(op, profile, "float32").seconds == pytest.approx(20_000 / 1e10)
    big = Op("add", "forward", "memory", flops=0, bytes=10**9, launches=1)
    assert op_time(big, profile, "float32").seconds == pytest.approx(10**9 / 1e11)  # clamped at the last point


@pytest.mark.parametrize("mode", ["forward", "train", "prefill", "decode"])
def test_monotonic_in_size_batch_and_seq(mode):
    profile = load_profile("cpu_generic")

    def seconds(size, batch, seq):
        return predict(from_size(size), profile, Workload(mode, batch, seq))["seconds"]

    assert seconds("tiny", 2, 256) < seconds("20m", 2, 256) < seconds("small", 2, 256) < seconds("base", 2, 256)
    assert seconds("small", 1, 256) < seconds("small", 2, 256) < seconds("small", 8, 256)
    assert seconds("small", 2, 64) < seconds("small", 2, 256) < seconds("small", 2, 1024)


@pytest.mark.parametrize("profile", [synthetic_profile(), load_profile("cpu_generic")], ids=["synthetic", "cpu"])
def test_prefill_is_cheaper_than_the_forward_by_the_head_on_all_but_the_last_positions(profile):
    arch = from_size("tiny")  # vocabulary 32,000 against hidden 256: the head is most of a forward's FLOPs
    forward, prefill = (predict(arch, profile, Workload(mode, 2, 64)) for mode in ("forward", "prefill"))
    assert prefill["seconds"] < forward["seconds"]
    head = {result["workload"]["mode"]: sum(op["seconds"] for op in result["ops"] if op["name"] == "lm_head")
            for result in (forward, prefill)}
    assert forward["seconds"] - prefill["seconds"] == pytest.approx(head["forward"] - head["prefill"])
    assert prefill["tokens_per_s"] == pytest.approx(128 / prefill["seconds"])  # the prompt's B·P tokens


def test_prediction_is_the_sum_of_its_ops_and_mfu_uses_matmul_flops():
    profile = synthetic_profile()
    result = predict(from_size("tiny"), profile, Workload("train", 1, 32))
    assert result["seconds"] == pytest.approx(sum(row["seconds"] for row in result["ops"]))
    assert result["seconds"] == pytest.approx(sum(result["seconds_by_phase"].values()))
    assert result["mfu"] == pytest.approx(result["matmul_flops"] / (result["seconds"] * 2e11))


@pytest.mark.parametrize("mode", ["train", "decode"])
def test_a_measured_host_overhead_replaces_the_per_launch_overhead(mode):
    """Kernels keep their compute and memory terms; the per-launch overhead gives way to the measured host time,
    split over the phases by their launches; another model, mode or batch keeps the launch model."""
    plain = synthetic_profile()
    point = HostOverheadPoint("tiny", mode, 2, Spread(0.01, 0.02, 0.04))
    measured = replace(plain, efficiency=replace(plain.efficiency, host_overhead=(point,)))
    arch, workload = from_size("tiny"), Workload(mode, 2, 32)
    before, after = predict(arch, plain, workload), predict(arch, measured, workload)
    kernels = sum(max(row["compute_s"], row["memory_s"]) for row in before["ops"])
    assert after["seconds"] == pytest.approx(kernels + 0.02)
    assert predict(arch, measured, workload, "optimistic")["seconds"] == pytest.approx(
        sum(max(r["compute_s"], r["memory_s"]) for r in predict(arch, plain, workload, "optimistic")["ops"]) + 0.01)
    host = [row for row in after["ops"] if row["name"] == "host_overhead"]
    assert sum(row["overhead_s"] for row in host) == pytest.approx(0.02)
    assert all(row["overhead_s"] == 0 for row in after["ops"] if row["name"] != "host_overhead")
    launches = {phase: sum(op["launches"] for op in before["ops"] if op["phase"] == phase) for phase in PHASES}
    for row in host:
        assert row["overhead_s"] == pytest.approx(0.02 * launches[row["phase"]] / sum(launches.values()))
    assert {row["phase"] for row in host} == ({"forward", "backward", "optimizer"} if mode == "train" else {"forward"})
    assert after["seconds"] == pytest.approx(sum(after["seconds_by_phase"].values()))
    assert predict(arch, measured, Workload(mode, 1, 32)) == predict(arch, plain, Workload(mode, 1, 32)) | {
        "hardware": "synthetic"}


def test_a_workload_on_another_device_than_the_profile_is_refused():
    with pytest.raises(ValueError, match="workload device='cpu' does not match profile 'nvidia_a100'"):
        predict(from_size("tiny"), load_profile("nvidia_a100"), Workload("train", 1, 32))


def test_tf32_matmul_precision_prices_the_products_at_the_tfloat32_rates():
    """matmul_precision "high": every matmul and attention op at the profile's tfloat32 points, MFU against the TF32
    peak; the memory-bound ops move the same float32 bytes at the same bandwidth."""
    arch, profile = from_size("tiny"), load_profile("nvidia_h100_sxm")
    fp32, tf32 = (predict(arch, profile, Workload("train", 4, 256, device="cuda", matmul_precision=precision))
                  for precision in ("highest", "high"))
    assert Workload("train", 1, 8, device="cuda", matmul_precision="high").matmul_dtype == "tfloat32"
    for a, b in zip(fp32["ops"], tf32["ops"], strict=True):
        assert (a["name"], a["bytes"], a["memory_s"]) == (b["name"], b["bytes"], b["memory_s"])
        if a["kind"] in ("matmul", "attention") and a["flops"]:
            m, k, n = a["mnk"]
            for row, dtype in ((a, "float32"), (b, "tfloat32")):
                assert row["compute_s"] == pytest.approx(row["flops"] / profile.matmul_flops_per_s(dtype, m, n, k))
    assert tf32["seconds"] < fp32["seconds"]
    assert tf32["mfu"] == pytest.approx(tf32["matmul_flops"] / (tf32["seconds"] * profile.peak("tfloat32")))


@pytest.mark.parametrize("kwargs, message", [
    (dict(matmul_precision="medium", device="cuda"), r"matmul_precision='medium' is not one of \('highest', 'high'\)"),
    (dict(matmul_precision="high", device="cuda", dtype="bfloat16"), r"needs dtype='float32' and device='cuda'"),
    (dict(matmul_precision="high"), r"needs dtype='float32' and device='cuda', got dtype='float32', device='cpu'"),
])
def test_bad_matmul_precision_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Workload(**{"mode": "train", "batch": 1, "seq_len": 8, **kwargs})


def test_cli_matmul_precision(capsys):
    assert main(["predict", "tiny", "--hardware", "nvidia_h100_pcie", "--matmul-precision", "high"]) == 0
    assert "float32 (TF32 products)" in capsys.readouterr().out
    assert main(["predict", "tiny", "--hardware", "nvidia_a100", "--matmul-precision", "high"]) == 2
    assert "dtype='tfloat32' has no matmul efficiency in profile 'nvidia_a100'" in capsys.readouterr().err


def test_bad_estimate_names_the_field():
    with pytest.raises(ValueError, match="estimate"):
        predict(from_size("tiny"), synthetic_profile(), Workload("forward", 1, 8), "best")


def test_cli_json_keys(capsys):
    assert main(["predict", "tiny", "--hardware", "apple_m4_pro", "--mode", "decode", "--seq-len", "100",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"seconds", "tokens_per_s", "mfu", "bound", "matmul_flops", "seconds_by_phase", "seconds_by_bound",
            "launches", "bytes", "ops", "workload", "hardware", "estimate"} <= set(data)
    assert data["bound"] in ("compute", "memory", "overhead") and data["seconds"] > 0
    assert {"name", "phase", "kind", "flops", "bytes", "launches", "seconds", "bound"} <= set(data["ops"][0])


def test_cli_bad_input_is_one_line(capsys):
    assert main(["predict", "tiny", "--hardware", "apple_m4_pro", "--batch", "0"]) == 2
    err = capsys.readouterr().err
    assert "argument --batch: '0'" in err and err.count("\n") == 1


def test_profile_additions_validate_and_round_trip(tmp_path):
    """elementwise_by_size / zero_fill_by_size must ascend; exp_per_s is a spread; all survive save and load."""
    from profiler.hardware import load_profile as load
    from profiler.hardware import profile_from_dict, save_profile

    point = lambda size, rate: {"bytes": size, "bytes_per_s": {"min": rate, "median": rate, "max": rate}}  # noqa: E731
    profile = synthetic_profile(by_size=[point(10, 1e9), point(1000, 1e10)])
    data = profile.to_dict()
    data["efficiency"]["exp_per_s"] = {"min": 1e8, "median": 2e8, "max": 3e8}
    data["efficiency"]["zero_fill_by_size"] = [point(4096, 5e9)]
    save_profile(profile_from_dict(data), tmp_path / "p.json")
    loaded = load(tmp_path / "p.json")
    assert loaded.efficiency.exp_per_s.median == 2e8 and loaded.zero_fill_bytes_per_s("likely", 10**6) == 5e9
    data["efficiency"]["elementwise_by_size"] = [point(1000, 1e9), point(10, 1e9)]
    with pytest.raises(ValueError, match="elementwise_by_size must be strictly ascending"):
        profile_from_dict(data)


def test_attention_and_layout_labels_pick_their_points():
    from profiler.hardware import profile_from_dict

    data = synthetic_profile(flops=1e11).to_dict()
    data["efficiency"]["matmul"] += [
        {"dtype": "float32", "shape": "attention", "m": 128, "n": 64, "k": 64,
         "flops_per_s": {"min": 1e9, "median": 1e9, "max": 1e9}},
        {"dtype": "float32", "shape": "model_nt", "m": 8, "n": 8, "k": 8,
         "flops_per_s": {"min": 1e10, "median": 1e10, "max": 1e10}}]
    profile = profile_from_dict(data)
    attention = Op("attention.sdpa", "forward", "attention", flops=10**9, bytes=0, launches=0, mnk=(64, 64, 64))
    # (the "test" point at 64³ is nearer, but the attention op only searches points labelled attention)
    assert op_time(attention, profile, "float32").seconds == pytest.approx(1.0)  # the attention point, not 1e11
    linear = Op("q_proj", "forward", "matmul", flops=10**9, bytes=0, launches=0, mnk=(64, 64, 64), layout="nt")
    assert op_time(linear, profile, "float32").seconds == pytest.approx(0.1)  # only model_nt points searched
    plain = Op("x", "forward", "matmul", flops=10**9, bytes=0, launches=0, mnk=(64, 64, 64), layout="nn")
    assert op_time(plain, profile, "float32").seconds == pytest.approx(0.01)  # no model_nn points: all, nearest
