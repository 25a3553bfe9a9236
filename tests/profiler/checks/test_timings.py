"""validate-timings: the shipped published records load with sources and are predicted; bad records are named."""

from __future__ import annotations

import copy
import json

import pytest

from profiler.checks.timings import (
    LAYER_OP_PREFIXES,
    TIMINGS_FILE,
    check_record,
    load_records,
    predicted_seconds,
    record_arch,
    validate_timings,
)
from profiler.cli import main
from profiler.hardware import load_profile
from profiler.predict.roofline import predict
from profiler.source import from_config_dict
from profiler.workload import Workload


def test_shipped_records_have_sources_and_enough_devices():
    records = load_records()
    assert len(records) >= 8 and sum(load_profile(r["hardware"]).device_type == "mps" for r in records) >= 4
    for r in records:
        assert r["source"]["url"].startswith("https://") and r["source"]["measured"] and r["source"]["software"]


def test_validate_timings_rows_and_summary():
    result = validate_timings()
    rows, summary = result["rows"], result["summary"]
    assert [r["id"] for r in rows] == [r["id"] for r in load_records()]
    errors = sorted(abs(r["error"]) for r in rows)
    assert summary["max_abs_error"] == errors[-1] and summary["records"] == len(rows)
    assert summary["within_tolerance"] == sum(e <= result["tolerance"] for e in errors)
    for r in rows:
        assert r["predicted_s"] > 0 and r["error"] == pytest.approx(r["predicted_s"] / r["published_s"] - 1)
    trusted = [r for r in rows if not r["doubtful"]]
    assert result["passed"] == all(r["within"] for r in trusted)


def test_cli_prints_every_record_and_the_summary(capsys):
    status = main(["validate-timings"])
    out = capsys.readouterr().out
    assert status == (0 if validate_timings()["passed"] else 1)
    assert all(r["id"] in out for r in load_records()) and "not doubtful:" in out and "median" in out


def _record(**changes) -> dict:
    base = {"id": "r", "source": {"url": "https://example.org", "measured": "a run", "software": "torch"},
            "hardware": "apple_m4_pro",
            "model": {"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 64,
                      "vocab_size": 128},
            "scope": "model", "mode": "train", "batch": 2, "seq_len": 32, "dtype": "float32",
            "attention_kernel": "math", "published_s": 0.01, "published_note": "made up"}
    return {**base, **changes}


def _write(tmp_path, *records) -> str:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"records": list(records)}))
    return str(path)


def test_micro_batches_repeat_forward_and_backward_once_per_optimizer_step(tmp_path):
    one, four = _record(), _record(micro_batches=4)
    arch = from_config_dict(one["model"], "r").arch
    result = predict(arch, load_profile("apple_m4_pro"), Workload("train", 2, 32, device="mps"), attention_kernel="math")
    phases = result["seconds_by_phase"]
    assert predicted_seconds(one) == pytest.approx(result["seconds"])
    assert predicted_seconds(four) == pytest.approx(4 * (phases["forward"] + phases["backward"]) + phases["optimizer"])
    assert predicted_seconds(_record(mode="forward_backward")) == pytest.approx(phases["forward"] + phases["backward"])


def test_eval_forwards_add_forward_passes_of_the_same_shape():
    record = _record()
    forward = predicted_seconds(_record(mode="forward"))
    assert predicted_seconds({**record, "eval_forwards": 0.5}) == pytest.approx(predicted_seconds(record)
                                                                                 + 0.5 * forward)


def test_layers_scope_keeps_only_the_layer_ops():
    record = _record(mode="forward")
    arch = from_config_dict(record["model"], "r").arch
    rows = predict(arch, load_profile("apple_m4_pro"), Workload("forward", 2, 32, device="mps"), attention_kernel="math")["ops"]
    layers = sum(r["seconds"] for r in rows if r["name"].startswith(LAYER_OP_PREFIXES))
    assert predicted_seconds({**record, "scope": "layers"}) == pytest.approx(layers)
    assert layers < predicted_seconds(record)  # the head and embeddings are left out


@pytest.mark.parametrize("changes, message", [
    ({"mode": "prefill"}, r"records\[0\].mode='prefill' must be one of \['forward', 'forward_backward'"),
    ({"published_s": 0}, r"records\[0\].published_s=0 must be"),
    ({"batch": 0}, r"records\[0\].batch=0 must be an integer"),
    ({"micro_batches": 2, "mode": "forward"}, r"micro_batches=2 needs mode 'train'"),
    ({"source": {"url": "https://x.org"}}, r"records\[0\].source is missing"),
    ({"speed": 1}, r"unknown field\(s\) \['speed'\]"),
    ({"eval_forwards": -1}, r"records\[0\].eval_forwards=-1 must be"),
    ({"dropout": "yes"}, r"records\[0\].dropout='yes' must be true or false"),
    ({"master_weights": 0}, r"records\[0\].master_weights=0 must be true or false"),
    ({"optimizer": "lion"}, r"records\[0\].optimizer='lion' must be one of \['single_tensor', 'foreach'"),
    ({"mode": "decode", "dropout": True}, r"records\[0\].dropout=true needs a forward"),
    ({"arch": ["norm"]}, r"records\[0\].arch must be an object"),
    ({"arch": {"attention.fused": False}}, r"records\[0\].arch: unknown field\(s\) \['attention.fused'\]"),
    ({"arch": {"layer_groups": []}}, r"records\[0\].arch: unknown field\(s\) \['layer_groups'\]"),
])
def test_bad_records_name_the_field(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        load_records(_write(tmp_path, _record(**changes)))


def test_arch_changes_reach_the_prediction():
    """`arch` changes the resolved ArchSpec (top-level fields and every layer's attention), and the prediction with
    it: separate q, k, v projections are three products of the fused one's FLOPs; an eager LayerNorm costs more."""
    plain = _record(model={**_record()["model"], "activation_function": "gelu_new"})
    changed = {**plain, "arch": {"norm": "layernorm_eager", "attention.fused_qkv": False,
                                 "attention.qkv_bias": False}}
    arch = record_arch(load_records_of(plain)[0])
    new = record_arch(load_records_of(changed)[0])
    assert (arch.norm, new.norm) == ("layernorm", "layernorm_eager")
    assert [(g.attention.fused_qkv, g.attention.qkv_bias) for g in new.layer_groups] == [(False, False)]
    assert new.layer_groups[0].mlp == arch.layer_groups[0].mlp
    workload = Workload("forward", 2, 32, device="mps")
    ops = {r["name"]: r for r in predict(new, load_profile("apple_m4_pro"), workload, attention_kernel="math")["ops"]}
    fused = predict(arch, load_profile("apple_m4_pro"), workload, attention_kernel="math")["ops"]
    qkv = next(r for r in fused if r["name"] == "attention.qkv_proj")
    assert sum(ops[f"attention.{p}_proj"]["flops"] for p in "qkv") == qkv["flops"]
    assert predicted_seconds(load_records_of(changed)[0]) > predicted_seconds(load_records_of(plain)[0])


def load_records_of(*records) -> list[dict]:
    """Records validated (defaults filled) as load_records does, without a file."""
    return [check_record(copy.deepcopy(r), f"records[{i}]") for i, r in enumerate(records)]


@pytest.mark.parametrize("changes, message", [
    ({"attention.fused_qkv": "no"}, r"arch.fused_qkv='no' must be a bool like True"),
    ({"norm": "batchnorm"}, r"norm='batchnorm' is not one of \('rmsnorm', 'layernorm', 'layernorm_eager'\)"),
    ({"hidden_size": 64.0}, r"arch.hidden_size=64.0 must be a int like 64"),
])
def test_bad_arch_values_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        record_arch(load_records_of(_record(arch=changes))[0])


def test_missing_field_and_duplicate_ids(tmp_path):
    broken = _record()
    del broken["dtype"]
    with pytest.raises(ValueError, match=r"missing field\(s\) \['dtype'\]"):
        load_records(_write(tmp_path, broken))
    with pytest.raises(ValueError, match=r"ids must be unique.*\['r'\]"):
        load_records(_write(tmp_path, _record(), copy.deepcopy(_record())))


def test_shipped_file_is_package_data():
    assert TIMINGS_FILE.is_file() and TIMINGS_FILE.parent.name == "timings"


def test_run_settings_reach_the_prediction_on_the_profile_s_device():
    """dropout, optimizer and master_weights are predicted as a Workload on the record's device type; the
    evaluation forwards run in eval mode (no dropout)."""
    record = _record(dropout=True)
    arch = from_config_dict(record["model"], "r").arch
    profile = load_profile("apple_m4_pro")
    with_dropout = predict(arch, profile, Workload("train", 2, 32, device="mps", dropout=True),
                           attention_kernel="math")
    assert predicted_seconds(record) == pytest.approx(with_dropout["seconds"])
    dropout_s = sum(r["seconds"] for r in with_dropout["ops"] if ".dropout" in r["name"])
    assert predicted_seconds(record) - predicted_seconds(_record()) == pytest.approx(dropout_s)
    forward = predicted_seconds(_record(mode="forward"))
    assert predicted_seconds({**record, "eval_forwards": 1}) == pytest.approx(predicted_seconds(record) + forward)
    cuda = _record(hardware="nvidia_a100_40gb", dtype="bfloat16", optimizer="fused", master_weights=False)
    fused = predict(arch, load_profile("nvidia_a100_40gb"),
                    Workload("train", 2, 32, "bfloat16", device="cuda", optimizer="fused", master_weights=False),
                    attention_kernel="math")
    assert predicted_seconds(cuda) == pytest.approx(fused["seconds"])
    assert [r["name"].split("[")[0] for r in fused["ops"] if r["phase"] == "optimizer"] == ["optimizer.adamw_fused"]
    with pytest.raises(ValueError, match="optimizer='fused' is priced as CUDA's .* needs device='cuda'"):
        predicted_seconds(_record(optimizer="fused"))  # an MPS profile


def test_shipped_records_state_their_activation_and_dropout():
    """Every record's config names the activation its code ran and its dropout probabilities (GPT2Config's defaults
    would otherwise stand in for them); a record in training mode has a nonzero one."""
    for record in load_records():
        model = record["model"]
        assert {"activation_function", "embd_pdrop", "attn_pdrop", "resid_pdrop"} <= set(model), record["id"]
        assert record["dropout"] == any(model[k] > 0 for k in ("embd_pdrop", "attn_pdrop", "resid_pdrop"))
