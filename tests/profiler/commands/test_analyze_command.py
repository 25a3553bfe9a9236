import csv
import io
import json
import subprocess
import sys

import pytest
from profiler_testing import SHIPPED

from profiler.checks import published
from profiler.cli import main
from profiler.formulas import flops as F
from profiler.formulas import memory as M
from profiler.source import MODELS_DIR, resolve

PARAM_KEYS = {"total", "active", "embedding", "non_embedding", "active_non_embedding", "active_compute",
              "components", "active_components", "router_bias_buffers"}
FLOP_KEYS = {"forward", "forward_causal", "backward", "backward_causal", "recompute", "recompute_causal",
             "train_step", "train_step_causal", "six_nd", "palm", "prefill", "decode_per_token", "components"}
MEMORY_KEYS = {"weights", "gradients", "optimizer", "master_weights", "activations", "activations_korthikanti",
               "forward_peak", "generate_peak", "timeline", "generate_timeline", "weights_by_format",
               "kv_cache", "prefill_working", "train_peak", "inference_peak"}


def run_cli(capsys, *argv):
    code = main(["analyze", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_interface_is_stable(capsys):
    code, out, _ = run_cli(capsys, "tiny", "--batch", "4", "--seq-len", "128", "--grad-accum", "2", "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert set(report["params"]) == PARAM_KEYS and set(report["flops"]) == FLOP_KEYS
    assert set(report["memory"]) == MEMORY_KEYS
    assert set(report["flops"]["components"]) == {"dense", "causal", "prefill", "decode_per_token"}
    timelines = ("timeline", "generate_timeline", "weights_by_format")
    assert all(isinstance(v, int) for k, v in report["memory"].items() if k not in timelines)
    assert set(report["memory"]["timeline"]) == set(M.TRAINING_PHASES)
    assert set(report["memory"]["generate_timeline"]) == set(M.GENERATE_PHASES)
    assert report["workload"]["micro_batch"] == 2
    flops, memory = report["flops"], report["memory"]
    attention = flops["components"]["dense"]["attention_scores"]  # fused kernel: the backward recomputes it
    assert flops["backward"] == 2 * flops["forward"] + attention
    assert flops["train_step"] == flops["forward"] + flops["backward"]
    assert flops["forward_causal"] < flops["forward"]
    assert memory["train_peak"] == max(memory["timeline"].values())
    assert memory["generate_peak"] == max(memory["generate_timeline"].values())
    assert memory["timeline"]["between_steps"] == memory["weights"] + memory["optimizer"] + M.rope_table_bytes(
        resolve("tiny").arch)


def test_grad_accumulation_changes_activations_only(capsys):
    reports = [json.loads(run_cli(capsys, "tiny", "--batch", "4", "--grad-accum", g, "--format", "json")[1])
               for g in ("1", "4")]
    assert reports[0]["flops"] == reports[1]["flops"]
    assert reports[0]["memory"]["gradients"] == reports[1]["memory"]["gradients"]
    assert reports[1]["memory"]["activations"] * 4 == reports[0]["memory"]["activations"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_every_format_renders(capsys, fmt):
    code, out, _ = run_cli(capsys, str(MODELS_DIR / "deepseek_v3.json"), "--format", fmt)
    assert code == 0 and ("671,026,419,200" in out or "671026419200" in out)
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert {"quantity": "params.total", "value": "671026419200", "unit": "params"} in rows
    if fmt == "markdown":
        assert "| total | 671,026,419,200 |" in out
    if fmt == "table":
        assert "Assumptions" in out and "causal/6N" in out


@pytest.mark.parametrize("argv, message", [
    (["tiny", "--batch", "0"], "argument --batch: '0' must be an integer in [1, 16777216]"),
    (["no-such-model"], "neither a zoo size"),
    (["tiny", "--batch", "3", "--grad-accum", "2"], "grad_accum=2 must be an integer >= 1 that divides batch=3"),
    ([], "MODEL is required"),
    (["--training-budget", "1000", "--mfu", "1.5"], "argument --mfu: '1.5' must be a number in (0, 1]"),
    (["tiny", "--seq-len", "5000"], "--seq-len=5,000 is past tiny's positions: it must be <= 2,048 "
                                    "(max_position_embeddings)"),
    (["gpt2", "--context", "1025"], "--context=1,025 is past gpt2's positions: it must be <= 1,024"),
    (["tiny", "--seq-len", "2000", "--new-tokens", "49"], "--seq-len + --new-tokens=2,049 is past tiny's positions: "
                                                          "it must be <= 2,048 (max_position_embeddings)"),
    (["tiny", "--new-tokens", "2048"], "--new-tokens + 1 (a prompt of one token at least)=2,049 is past tiny's "
                                       "positions: it must be <= 2,048 (max_position_embeddings)"),
    (["tiny", "--seq-len", "1" + "0" * 400], "argument --seq-len: '1000000000000000000000000000000000000000...' must"),
    (["tiny", "--seq-len", "10**400"], "argument --seq-len: '10**400' must be an integer in [1, 16777216]"),
    (["--training-budget", "inf", "--format", "json"], "argument --training-budget/--training_budget: 'inf' must be "
                                                       "a finite number > 0"),
    (["--training-budget", "1e300", "--format", "json"], "result.training_budget.flops=inf is not a finite number"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, seq_len, prompt, new_tokens", [
    (["--seq-len", "2000", "--new-tokens", "48"], 2000, 2000, 48),  # the prompt and its new tokens fill tiny's 2,048
    (["--new-tokens", "2047"], 2048, 1, 2047),  # without --seq-len the prompt shortens to the one token left
    (["--new-tokens", "100"], 2048, 2048 - 100, 100),
    ([], 2048, 2048 - 32, 32),  # the defaults: training and forward figures at 2,048, the prompt 32 shorter
])
def test_generation_fits_the_model_s_positions(capsys, argv, seq_len, prompt, new_tokens):
    """generate_peak runs --new-tokens past a prompt of --seq-len tokens: up to exactly max_position_embeddings
    (one more is refused: test_bad_input_is_one_line_and_exit_2); without --seq-len only the prompt is shortened."""
    code, out, _ = run_cli(capsys, "tiny", *argv, "--format", "json")
    report = json.loads(out)
    assert code == 0 and [report["workload"][k] for k in ("seq_len", "prompt", "new_tokens")] == [seq_len, prompt,
                                                                                                new_tokens]
    assert report["memory"]["generate_timeline"] == M.generate_timeline(resolve("tiny").arch, 1, prompt, new_tokens,
                                                                        "bfloat16")
    assert report["flops"]["forward"] == sum(F.forward_flops(resolve("tiny").arch, 1, seq_len, "dense").values())


def test_optimizer_implementation_reaches_the_memory_timeline(capsys):
    """--optimizer-implementation fused: the optimizer step adds no temporaries; without it --device's default."""
    arch = resolve("tiny").arch
    for argv, implementation in (([], "foreach"), (["--device", "cpu"], "single_tensor"),
                                 (["--optimizer-implementation", "fused"], "fused")):
        code, out, _ = run_cli(capsys, "tiny", "--seq-len", "64", *argv, "--format", "json")
        report = json.loads(out)
        assert code == 0 and report["workload"]["optimizer_implementation"] == implementation
        device = "cpu" if "--device" in argv else "cuda"
        assert report["memory"]["timeline"] == M.training_timeline(arch, 1, 64, "bfloat16", device=device,
                                                                   implementation=implementation)
    timeline = report["memory"]["timeline"]
    assert timeline["optimizer_step"] == M.training_state_bytes(arch, "bfloat16", gradients=True)


def test_the_decoded_token_fits_the_model_s_positions(capsys):
    """The decode figures add a token at position --context: gpt2 (1,024 positions) takes --context 1,023, refuses
    1,024, and defaults to 1,023 when the default seq-len fills its positions."""
    code, out, _ = run_cli(capsys, "gpt2", "--context", "1023", "--format", "json")
    assert code == 0 and json.loads(out)["workload"]["context"] == 1023
    code, out, err = run_cli(capsys, "gpt2", "--context", "1024")
    assert code == 2 and out == "" and "--context + the decoded token=1,025 is past gpt2's positions" in err
    code, out, _ = run_cli(capsys, "gpt2", "--format", "json")
    workload = json.loads(out)["workload"]
    assert code == 0 and (workload["seq_len"], workload["context"]) == (1024, 1023)
    code, out, _ = run_cli(capsys, "gpt2", "--seq-len", "512", "--format", "json")
    assert code == 0 and json.loads(out)["workload"]["context"] == 512


def test_validate_passes_on_shipped_configs(capsys):
    code, out, _ = run_cli(capsys, "--validate", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and all(row["match"] for row in rows)
    assert {row["model"] for row in rows} == set(SHIPPED)


def test_validate_fails_on_a_wrong_published_count(tmp_path, monkeypatch, capsys):
    wrong = {"llama_7b": [{"quantity": "total", "value": 5_295_575_040, "rounding": 1, "source": "seed 003"}]}
    (tmp_path / "published.json").write_text(json.dumps(wrong))
    monkeypatch.setattr(published, "MODELS_DIR", tmp_path)
    code, out, _ = run_cli(capsys, "--validate")
    assert code == 1 and "False" in out


def test_training_budget(capsys):
    code, out, _ = run_cli(capsys, "--training-budget", "10000", "--price-per-hour", "2", "--peak-tflops", "1000",
                           "--mfu", "0.5", "--format", "json")
    budget = json.loads(out)["training_budget"]
    assert code == 0 and budget["flops"] == pytest.approx(10000 / 2 * 3600 * 1e15 * 0.5)
    for plan in ("tokens_per_param_rule", "parametric_fit"):
        assert 6 * budget[plan]["params"] * budget[plan]["tokens"] == pytest.approx(budget["flops"])
    assert budget["tokens_per_param_rule"]["tokens"] == pytest.approx(20 * budget["tokens_per_param_rule"]["params"])


def test_analysis_imports_no_torch():
    """The analytic path allocates no tensors: it does not even import torch."""
    code = ("import sys; from profiler.analysis import analyze; from profiler.source import resolve; "
            "analyze(resolve(sys.argv[1]).arch, batch=8, seq_len=4096); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, "deepseek_v3"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["llama_7b", "mixtral_8x7b", "deepseek_v3"])
def test_shipped_configs_are_addressed_by_name(capsys, name):
    code, out, _ = run_cli(capsys, name, "--format", "json")
    by_path = main(["analyze", str(MODELS_DIR / f"{name}.json"), "--format", "json"])
    assert code == by_path == 0
    first, second = out, capsys.readouterr().out
    assert json.loads(first) == json.loads(second) and json.loads(first)["model"] == name
