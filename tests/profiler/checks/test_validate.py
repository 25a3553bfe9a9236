"""`python -m profiler validate`: analytic == counted for the zoo and transformers' decoders, wrong formulas caught,
stable JSON, one-line errors, and `analyze --counted`."""

from __future__ import annotations

import importlib.util
import json

import pytest
from profiler_testing import shipped_config

from complexity.config import config_for_size
from profiler.checks import validate
from profiler.cli import main
from profiler.formulas import flops as F
from profiler.source import from_config_dict, resolve

pytest.importorskip("transformers")

RESULT_KEYS = {"model", "device", "batch", "seq_len", "tolerance", "convention", "attention_kernel", "unknown_ops",
               "notes", "rows", "max_rel_error", "passed"}
ROW_KEYS = {"quantity", "component", "analytic", "counted", "counter", "rel_error", "status", "note"}


@pytest.fixture
def config_file(tmp_path):
    """Write a config dict to a config.json and return its path."""

    def write(config: dict, name: str = "model") -> str:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def tiny_zoo(config_file):
    return config_file(config_for_size("tiny", num_hidden_layers=2, vocab_size=512).to_dict(), "tiny2")


def run_json(capsys, *argv):
    code = main(["validate", *argv, "--format", "json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else None), err


def assert_exact(result):
    """Every row that is not a known gap agrees exactly; parameters, forward and backward are all checked."""
    assert result["passed"] and result["max_rel_error"] == 0
    checked = [row for row in result["rows"] if row["status"] != "known_gap"]
    assert all(row["status"] == "ok" and row["analytic"] == row["counted"] for row in checked)
    assert {(row["quantity"], row["counter"]) for row in checked} >= {
        ("params", "parameters"), ("forward", "ours"), ("backward", "ours"), ("forward", "fvcore"),
        ("forward", "flop_counter_mode")}
    assert result["unknown_ops"]["ours"] == {} and result["unknown_ops"]["fvcore"] == {}


def test_tiny_zoo_model_passes_with_stable_json(capsys, tiny_zoo):
    code, result, _ = run_json(capsys, tiny_zoo, "--batch", "2", "--seq-len", "16")
    assert code == 0 and set(result) == RESULT_KEYS
    assert all(set(row) == ROW_KEYS and row["status"] in validate.STATUSES for row in result["rows"])
    assert all(row["counter"] in validate.COUNTERS for row in result["rows"])
    assert (result["device"], result["batch"], result["seq_len"], result["tolerance"]) == ("meta", 2, 16, 1e-3)
    assert_exact(result)
    # our counter sees the fused CPU kernel (attention routed there on meta), FlopCounterMode the bmm decomposition
    assert result["attention_kernel"] == {"ours": "fused", "flop_counter_mode": "math", "fvcore": None}
    backward = {row["component"]: row["counted"] for row in result["rows"]
                if row["quantity"] == "backward" and row["counter"] == "ours"}
    forward = {row["component"]: row["counted"] for row in result["rows"]
               if row["quantity"] == "forward" and row["counter"] == "ours"}
    assert backward["attention_core"] * 2 == forward["attention_core"] * 5  # 5 products instead of 2
    assert backward["mlp"] == 2 * forward["mlp"] and backward["lm_head"] == 2 * forward["lm_head"]
    causal = {row["quantity"]: row["status"] for row in result["rows"] if row["quantity"].endswith("_causal")}
    assert causal == {"forward_causal": "ok", "backward_causal": "ok"}  # is_causal: the triangle is known on meta


@pytest.mark.parametrize("name, device, kernel", [
    ("llama_7b", "meta", "fused"), ("qwen3_0.6b", "meta", "fused"),
    ("mixtral_8x7b", "cpu", "fused"), ("deepseek_v3", "cpu", "math"),  # MLA's d_qk != d_v: PyTorch's math path
    ("gemma_2b", "meta", "fused"), ("gemma2_2b", "meta", "math"),  # soft-capped scores: eager attention
    ("gemma3_1b", "meta", "fused"), ("phi3_mini_4k", "meta", "fused"), ("qwen1.5_moe_a2.7b", "cpu", "fused"),
    ("qwen3_30b_a3b", "cpu", "fused"), ("olmoe_1b_7b", "cpu", "fused"), ("olmo2_1b", "meta", "fused"),
    ("deepseek_v2_lite", "cpu", "math"), ("pythia_1b", "meta", "fused"),
    ("falcon_7b", "meta", "math"),  # one key/value head against H query heads, unexpanded: PyTorch's math path
    ("granite_3.0_2b", "meta", "fused"), ("starcoder2_3b", "meta", "fused"),
])
def test_scaled_down_transformers_configs_pass(capsys, config_file, name, device, kernel):
    small = from_config_dict(shipped_config(name), name).scaled_down()
    code, result, _ = run_json(capsys, config_file(dict(small.config), name), "--seq-len", "16")
    assert code == 0 and result["device"] == device and result["attention_kernel"]["ours"] == kernel
    assert_exact(result)
    gaps = {(row["quantity"], row["component"], row["counter"]) for row in result["rows"]
            if row["status"] == "known_gap"}
    assert ("backward", "total", "fvcore") in gaps
    if device == "cpu":  # FlopCounterMode prices torch._grouped_mm (the experts) at 0
        assert ("forward", "mlp", "flop_counter_mode") in gaps


@pytest.mark.parametrize("zoo", [True, False])
def test_sliding_window_causal_counts_on_cpu(capsys, config_file, zoo):
    """On CPU the counter reads the window masks: the causal attention core matches W(W+1)/2 + (S-W)·W pairs."""
    if zoo:
        config = config_for_size("tiny", num_hidden_layers=1, sliding_window=8, vocab_size=64).to_dict()
    else:
        config = dict(from_config_dict(shipped_config("mistral_7b"), "mistral").scaled_down().config)  # window 8
    path = config_file(config, "windowed")
    code, result, _ = run_json(capsys, path, "--seq-len", "32", "--device", "cpu")
    assert code == 0 and result["device"] == "cpu" and result["max_rel_error"] == 0
    causal = [row for row in result["rows"] if row["quantity"].endswith("_causal") and row["counter"] == "ours"]
    assert [row["status"] for row in causal] == ["ok", "ok"]
    heads, head_dim, layers = (4, 64, 1) if zoo else (4, 16, 2)
    pairs = 8 * 9 // 2 + (32 - 8) * 8
    assert causal[0]["counted"] == layers * 4 * heads * pairs * head_dim  # Q·Kᵀ and P·V, 2 FLOPs per multiply-add
    code, result, _ = run_json(capsys, path, "--seq-len", "32")  # on meta a mask has no values: a known gap
    statuses = {row["status"] for row in result["rows"] if row["quantity"].endswith("_causal")}
    assert code == 0 and statuses == {"known_gap"}


def test_a_wrong_formula_is_over_tolerance_and_exits_1(capsys, monkeypatch, tiny_zoo):
    def one_percent_high(arch, tokens):
        return 2 * tokens * arch.hidden_size * arch.vocab_size * 101 // 100

    monkeypatch.setattr(F, "lm_head_flops", one_percent_high)
    code, result, _ = run_json(capsys, tiny_zoo, "--seq-len", "8")
    assert code == 1 and not result["passed"]
    over = {(row["quantity"], row["component"], row["counter"]) for row in result["rows"]
            if row["status"] == "over_tolerance"}
    assert ("forward", "lm_head", "ours") in over and ("backward", "lm_head", "ours") in over
    assert ("forward", "lm_head", "fvcore") in over and ("forward", "total", "flop_counter_mode") in over
    assert main(["validate", tiny_zoo, "--seq-len", "8", "--tolerance", "0.5"]) == 0  # 1% off is within 50%
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["no-such-model"], "MODEL='no-such-model' is neither a zoo size"),
    (["tiny", "--seq-len", "0"], "argument --seq-len: '0' must be an integer in [1, 16777216]"),
    (["tiny", "--batch", "-1"], "argument --batch: '-1' must be an integer in [1, 16777216]"),
    (["tiny", "--tolerance", "2"], "tolerance=2.0 must be a number in [0, 1)"),
    (["tiny", "--seq-len", "4096"], "--seq-len=4,096 is past tiny's positions: it must be <= 2,048"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(["validate", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err


def test_gpt2_sequence_longer_than_its_position_table_is_rejected(capsys, config_file):
    path = config_file(shipped_config("gpt2"), "gpt2")
    assert main(["validate", path, "--seq-len", "1025"]) == 2
    assert "--seq-len=1,025 is past gpt2's positions: it must be <= 1,024" in capsys.readouterr().err


def test_analyze_counted_embeds_the_summary(capsys, tiny_zoo):
    assert main(["analyze", tiny_zoo, "--seq-len", "8", "--counted", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["validation"]) == {"device", "convention", "tolerance", "max_rel_error", "passed", "notes", "rows"}
    assert report["validation"]["passed"]
    ours = {row["quantity"]: row["counted"] for row in report["validation"]["rows"]
            if row["component"] == "total" and row["counter"] == "ours"}
    assert ours == {"forward": report["flops"]["forward"], "backward": report["flops"]["backward"]}
    assert main(["analyze", tiny_zoo, "--seq-len", "8", "--counted"]) == 0
    assert "Validation against counted FLOPs" in capsys.readouterr().out


def test_count_error():
    assert validate.count_error(1000, 1001) == pytest.approx(1e-3) and validate.count_error(1000, 999) > 0
    assert validate.count_error(0, 0) == 0 and validate.count_error(0, 5) == 1.0


def test_validate_without_fvcore_leaves_its_rows_out(monkeypatch):
    """The main job installs the package without the dev extra: validation still runs, and says fvcore is absent."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fvcore" else find_spec(name, *a))
    result = validate.validate(resolve("tiny"), batch=1, seq_len=8)
    assert result["passed"] and not any(row["counter"] == "fvcore" for row in result["rows"])
    assert any("fvcore is not installed" in note for note in result["notes"])


def test_alternating_windows_count_causally_on_cpu(capsys, config_file):
    """Gemma 3's five sliding layers and one global one: the counter reads each layer's mask on CPU, and the
    causal attention core matches the band of the sliding layers plus the triangle of the global one."""
    config = dict(from_config_dict(shipped_config("gemma3_1b"), "gemma3").scaled_down().config, num_hidden_layers=6)
    code, result, _ = run_json(capsys, config_file(config, "gemma3_small"), "--seq-len", "32", "--device", "cpu")
    assert code == 0 and result["max_rel_error"] == 0
    (forward,) = [row for row in result["rows"] if row["quantity"] == "forward_causal" and row["counter"] == "ours"]
    heads, head_dim = 4, 16
    band, triangle = 8 * 9 // 2 + (32 - 8) * 8, 32 * 33 // 2
    assert forward["status"] == "ok" and forward["counted"] == 4 * heads * head_dim * (5 * band + triangle)


VARIANTS = {
    "falcon_new_architecture": dict(model_type="falcon", vocab_size=64, hidden_size=32, num_attention_heads=4,
                                    num_hidden_layers=2, new_decoder_architecture=True, num_kv_heads=2, bias=True),
    "falcon_old_sequential_mha": dict(model_type="falcon", vocab_size=64, hidden_size=32, num_attention_heads=4,
                                      num_hidden_layers=2, multi_query=False, parallel_attn=False),
    "gpt_neox_sequential": dict(model_type="gpt_neox", vocab_size=64, hidden_size=32, num_attention_heads=4,
                                num_hidden_layers=2, intermediate_size=64, use_parallel_residual=False,
                                rotary_pct=0.5, attention_bias=False),
    "qwen2_moe_windows_and_dense_layers": dict(
        model_type="qwen2_moe", vocab_size=64, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
        num_hidden_layers=4, intermediate_size=48, moe_intermediate_size=16, shared_expert_intermediate_size=24,
        num_experts=4, num_experts_per_tok=2, decoder_sparse_step=2, mlp_only_layers=[3], use_sliding_window=True,
        sliding_window=8, max_window_layers=3),
    "deepseek_v2_q_lora_bias": dict(
        model_type="deepseek_v2", vocab_size=64, hidden_size=32, num_attention_heads=4, num_hidden_layers=3,
        intermediate_size=48, moe_intermediate_size=16, n_routed_experts=4, num_experts_per_tok=2,
        n_shared_experts=1, first_k_dense_replace=1, q_lora_rank=12, kv_lora_rank=8, qk_nope_head_dim=8,
        qk_rope_head_dim=4, v_head_dim=8, attention_bias=True, topk_method="group_limited_greedy", n_group=2,
        topk_group=1),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_family_variants_are_exact(capsys, config_file, name):
    """The structural variants the shipped configs do not show, each exact against transformers on CPU."""
    code, result, _ = run_json(capsys, config_file(VARIANTS[name], name), "--seq-len", "16", "--device", "cpu")
    assert code == 0 and result["device"] == "cpu"
    assert_exact(result)
