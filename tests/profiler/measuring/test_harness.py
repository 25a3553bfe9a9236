"""`python -m profiler measure`: stable JSON keys, modes, the OOM-tolerant sweep, the module breakdown."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
import torch
from profiler_testing import random_hf_config

from profiler.cli import main
from profiler.measuring.device import get_device
from profiler.measuring.harness import gpu_profile, load_model, make_step, module_breakdown, sweep
from profiler.source import resolve

RUN_KEYS = {"batch", "status", "error", "timing", "tokens_per_s", "sequences_per_s", "memory", "energy_j",
            "energy_j_per_token", "predicted_peak_bytes"}
TIMING_KEYS = {"n", "mean_s", "std_s", "min_s", "max_s", "p50_s", "p95_s", "p99_s"}


@pytest.fixture(scope="module")
def micro_config(tmp_path_factory) -> str:
    """A two-layer zoo model small enough to build and run in milliseconds."""
    path = tmp_path_factory.mktemp("micro") / "config.json"
    path.write_text(json.dumps({"model_type": "complexity", "vocab_size": 64, "hidden_size": 32,
                                "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                                "num_key_value_heads": 1, "num_experts": 2}))
    return str(path)


def run_json(capsys, *argv: str) -> dict:
    assert main(["measure", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_tiny_forward_json_keys(capsys):
    report = run_json(capsys, "tiny", "--seq-len", "8", "--warmup", "0", "--repeats", "1", "--device", "cpu",
                      "--top", "3")
    assert set(report) == {"model", "model_type", "mode", "workload", "environment", "model_size",
                           "hardware_profile", "power_watts", "runs", "breakdown", "assumptions"}
    assert report["model_size"] == {"params": 12_914_688, "bytes": {"float32": 4 * 12_914_688,
                                                                   "bfloat16": 2 * 12_914_688, "int8": 12_914_688}}
    assert {"torch", "device", "threads", "dtype"} <= set(report["environment"])
    (run,) = report["runs"]
    assert set(run) == RUN_KEYS and set(run["timing"]) == TIMING_KEYS and run["timing"]["n"] == 1
    assert run["tokens_per_s"] == pytest.approx(8 / run["timing"]["mean_s"])
    assert run["memory"]["peak_bytes"] >= 4 * 12_914_688  # the weights are live
    assert run["energy_j"] == pytest.approx(run["timing"]["mean_s"] * report["power_watts"])
    assert len(report["breakdown"]["modules"]) == 3


def test_train_and_sweep(capsys, micro_config):
    report = run_json(capsys, micro_config, "--mode", "train", "--batch-sweep", "1,2", "--seq-len", "4",
                      "--warmup", "1", "--repeats", "2", "--device", "cpu")
    assert [r["batch"] for r in report["runs"]] == [1, 2] and all(r["status"] == "ok" for r in report["runs"])
    assert report["runs"][1]["tokens_per_s"] == pytest.approx(8 / report["runs"][1]["timing"]["mean_s"])
    names = [m["module"] for m in report["breakdown"]["modules"]]
    assert "(outside forward)" in names  # backward + optimizer step


def test_generate_reports_prefill_and_decode(capsys, micro_config):
    report = run_json(capsys, micro_config, "--mode", "generate", "--new-tokens", "3", "--seq-len", "4",
                      "--warmup", "0", "--repeats", "1", "--device", "cpu", "--top", "0")
    (run,) = report["runs"]
    assert {"prefill", "prefill_tokens_per_s", "decode_s_per_token", "decode_tokens_per_s"} <= set(run)
    assert report["breakdown"] is None


def test_table_format(capsys, micro_config):
    assert main(["measure", micro_config, "--seq-len", "4", "--warmup", "0", "--repeats", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "p99 ms" in out and "Top modules by self time" in out


def test_hf_config_builds_transformers_model(tmp_path):
    path = tmp_path / "llama.json"
    path.write_text(json.dumps(random_hf_config("llama", random.Random(0))))
    source = resolve(str(path))
    module = load_model(source, get_device("cpu"), "float32")
    assert type(module).__module__.startswith("transformers.") and source.arch.model_type == "llama"
    step, prefill = make_step(module, "generate", torch.zeros(1, 3, dtype=torch.long), new_tokens=2, zoo=False)
    assert step().shape == (1, 5) and prefill().shape == (1, 4)


def test_sweep_records_out_of_memory_and_skips_larger_batches():
    def run_batch(batch: int) -> dict:
        if batch >= 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
        return {"batch": batch, "status": "ok"}

    results = sweep(run_batch, [1, 2, 4, 8], get_device("cpu"))
    assert [r["status"] for r in results] == ["ok", "ok", "oom", "skipped"]
    assert results[2]["error"].startswith("CUDA out of memory")


def test_sweep_records_mps_style_oom_runtime_error_but_not_other_errors():
    def oom(batch: int) -> dict:
        raise RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)")

    assert sweep(oom, [2], get_device("cpu"))[0]["status"] == "oom"

    def bug(batch: int) -> dict:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        sweep(bug, [1], get_device("cpu"))


def test_breakdown_self_times_add_up_to_the_call(micro_config):
    device = get_device("cpu")
    module = load_model(resolve(micro_config), device, "float32")
    step, _ = make_step(module, "train", torch.zeros(1, 4, dtype=torch.long))
    step()
    breakdown = module_breakdown(module, step, device, top=100)
    assert sum(m["self_s"] for m in breakdown["modules"]) == pytest.approx(breakdown["total_s"])
    layers = next(m for m in breakdown["modules"] if m["module"] == "model.layers.*.mlp")
    assert layers["calls"] == 2  # two layers folded into one row


@pytest.mark.parametrize("argv, message", [
    (["--batch-sweep", "1,x"], "argument --batch-sweep: '1,x' must be comma-separated integers"),
    (["--batch", "0"], r"argument --batch: '0' must be an integer in \[1, 16777216\]"),
    (["--device", "tpu"], "argument --device: 'tpu' must be auto, cpu, cuda, cuda:N or mps"),
    (["--seq-len", "0"], r"argument --seq-len: '0' must be an integer in \[1, 16777216\]"),
])
def test_bad_arguments_are_one_line_errors(capsys, micro_config, argv, message):
    assert main(["measure", micro_config, *argv]) == 2
    assert message.replace("\\", "") in capsys.readouterr().err or pytest.fail(capsys.readouterr().err)


def test_registering_the_command_imports_no_torch():
    """`python -m profiler analyze` builds every command's parser; measure's must not pull in torch."""
    code = "import sys; from profiler.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_sweep_refuses_what_the_planner_refuses():
    ran = []

    def run_batch(batch: int) -> dict:
        ran.append(batch)
        return {"batch": batch, "status": "ok"}

    results = sweep(run_batch, [1, 8, 2], get_device("cpu"), refuse=lambda b: "too big" if b > 4 else None)
    assert ran == [1, 2] and [r["status"] for r in results] == ["ok", "refused", "ok"]
    assert results[1]["error"] == "too big"


def test_measure_refuses_a_batch_predicted_over_the_memory_limit(capsys, micro_config):
    from profiler.formulas.memory import predicted_peak_bytes

    source = resolve(micro_config)
    limit = int(1.1 * predicted_peak_bytes(source.arch, "train", 2, 8, "float32", "cpu"))  # the predictions' 10 %
    assert main(["measure", micro_config, "--mode", "train", "--batch-sweep", "1,2,64", "--seq-len", "8",
                 "--warmup", "0", "--repeats", "1", "--top", "0", "--device", "cpu", "--memory-limit", str(limit),
                 "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["status"] for r in runs] == ["ok", "ok", "refused"] and "over the memory limit" in runs[2]["error"]
    for run in runs[:2]:  # what ran fits, as predicted, and was measured within 10 % of the prediction
        assert run["memory"]["peak_bytes"] <= limit
        assert abs(run["predicted_peak_bytes"] - run["memory"]["peak_bytes"]) <= 0.1 * run["memory"]["peak_bytes"]


@pytest.mark.parametrize("name, profile", [
    ("NVIDIA H200", "nvidia_h200"), ("NVIDIA H100 PCIe", "nvidia_h100_pcie"),
    ("NVIDIA H100 80GB HBM3", "nvidia_h100_sxm"), ("NVIDIA A100-SXM4-40GB", "nvidia_a100_40gb"),
    ("NVIDIA A100-SXM4-80GB", "nvidia_a100"), ("NVIDIA A100-PCIE-40GB", "nvidia_a100_pcie_40gb"),
    ("NVIDIA GeForce RTX 4090", None),
])
def test_gpu_names_find_their_profile(name, profile):
    assert gpu_profile(name) == profile


def test_decode_step_timing_is_the_difference_per_step_under_each_key():
    from profiler.measuring.harness import decode_step_timing

    generate, prefill = {"min_s": 1.0, "mean_s": 1.4, "max_s": 2.0}, {"min_s": 0.2, "mean_s": 0.2, "max_s": 0.4}
    assert decode_step_timing(generate, prefill, 4, ("min_s", "mean_s")) == pytest.approx({"min_s": 0.2, "mean_s": 0.3})
    with pytest.raises(ValueError, match=r"decode time per token \{'min_s': -0.5\} is not positive"):
        decode_step_timing({"min_s": 0.25}, {"min_s": 0.75}, 1, ("min_s",))
    with pytest.raises(ValueError, match="new_tokens"):
        decode_step_timing(generate, prefill, 0, ("min_s",))
