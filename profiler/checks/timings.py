"""Predicted against published end-to-end timings (`python -m profiler validate-timings`).

The records (profiler/data/timings/published.json, package data) are single-device PyTorch runs that state their
model, batch, sequence length, dtype, device and attention path, with a time per step (or per decoded token) and
the source it was read from. Each is predicted by `profiler.predict.roofline.predict` on the shipped hardware
profile named in the record, at the `likely` estimate, and compared: error = predicted ÷ published − 1.

A record's `scope` is "model" (the whole step) or "layers" (only the transformer layers' ops, for benchmarks that
time one block: embedding, final norm, head, loss and optimizer rows are left out). Its `mode` is forward,
forward_backward (forward + backward, no optimizer), train (forward + backward + AdamW; `micro_batches` > 1 runs
forward + backward that many times before one optimizer step, as gradient accumulation does) or decode (one new
token per sequence at context `seq_len`). `eval_forwards` counts no-grad forward passes per timed step that the
benchmark ran inside its timed interval (an evaluation every few steps), predicted as forward passes of the same
shape. How the run executed, where its source says so: `dropout` true when the module ran in training mode with
its dropouts (at the probabilities of the record's config; the evaluation forwards run without), `optimizer` the
AdamW implementation (`OPTIMIZER_IMPLEMENTATIONS`; absent: the device's default) and `master_weights` false for
pure 16-bit training (the optimizer on 16-bit parameters). Every record is predicted on its profile's device type.
`arch` states how the record's code differs from its family's modules where a config has no key for it:
`ArchSpec` fields by name (e.g. `"norm": "layernorm_eager"` for a LayerNorm written as tensor code) and
`AttentionSpec` fields as `"attention.<field>"` (e.g. `"attention.fused_qkv": false` for separate q, k and v
projections), each of the field's own type. A `doubtful` record carries the reason its own figure is in doubt; the
summary reports the rest separately.
Nothing here is fitted to the records: they only check predictions.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from complexity.inputs import require_int, require_number
from profiler.arch import ArchSpec, AttentionSpec
from profiler.checks.errors import abs_error_summary
from profiler.hardware import Source, load_profile
from profiler.predict.ops import ATTENTION_KERNELS
from profiler.predict.roofline import predict
from profiler.source import from_config_dict, read_json, resolve
from profiler.workload import OPTIMIZER_IMPLEMENTATIONS, Workload

TIMINGS_FILE = Path(__file__).resolve().parent.parent / "data" / "timings" / "published.json"
SCOPES = ("model", "layers")
MODES = {"forward": "forward", "forward_backward": "train", "train": "train", "decode": "decode"}
TOLERANCE = 0.25  # the bar: each record within ±25 %
# Ops of the transformer layers (profiler.predict.ops names); everything else is model-level.
LAYER_OP_PREFIXES = ("norm.attention_in", "norm.mlp_in", "attention.", "mlp.", "residual.")
_REQUIRED = {"id", "source", "hardware", "model", "scope", "mode", "batch", "seq_len", "dtype", "attention_kernel",
             "published_s", "published_note"}
_OPTIONAL = {"model_note", "micro_batches", "eval_forwards", "doubtful", "dropout", "optimizer", "master_weights",
             "arch"}
_ARCH_FIELDS = {f.name for f in fields(ArchSpec)} - {"name", "model_type", "layer_groups"}
_ATTENTION_FIELDS = {f"attention.{f.name}" for f in fields(AttentionSpec)}


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}={value!r} must be a non-empty string")
    return value


def check_record(data: Any, where: str) -> dict[str, Any]:
    """One record validated (ValueError naming the field and what it allows); returns it with defaults filled."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object")
    missing, unknown = _REQUIRED - data.keys(), data.keys() - _REQUIRED - _OPTIONAL
    if missing or unknown:
        raise ValueError(f"{where}: missing field(s) {sorted(missing)}, unknown field(s) {sorted(unknown)}")
    record = dict(data)
    _text(f"{where}.id", record["id"])
    Source.from_dict(record["source"], f"{where}.source")
    _text(f"{where}.hardware", record["hardware"])
    if not isinstance(record["model"], (str, dict)) or not record["model"]:
        raise ValueError(f"{where}.model must be a model name or a config.json object")
    for key, allowed in (("scope", SCOPES), ("mode", tuple(MODES)), ("attention_kernel", ATTENTION_KERNELS)):
        if record[key] not in allowed:
            raise ValueError(f"{where}.{key}={record[key]!r} must be one of {list(allowed)}")
    for key in ("batch", "seq_len"):
        require_int(f"{where}.{key}", record[key], 1, 2**24)
    record["micro_batches"] = require_int(f"{where}.micro_batches", record.get("micro_batches", 1), 1, 10**4)
    if record["micro_batches"] > 1 and record["mode"] != "train":
        raise ValueError(f"{where}.micro_batches={record['micro_batches']} needs mode 'train'")
    record["eval_forwards"] = require_number(f"{where}.eval_forwards", record.get("eval_forwards", 0), 0, 1e3)
    require_number(f"{where}.published_s", record["published_s"], 0, 1e6, low_inclusive=False)
    _text(f"{where}.published_note", record["published_note"])
    for key in ("model_note", "doubtful"):
        if key in record:
            _text(f"{where}.{key}", record[key])
    for key, default in (("dropout", False), ("master_weights", True)):
        record[key] = record.get(key, default)
        if not isinstance(record[key], bool):
            raise ValueError(f"{where}.{key}={record[key]!r} must be true or false")
    if record["dropout"] and record["mode"] == "decode":
        raise ValueError(f"{where}.dropout=true needs a forward, forward_backward or train record (decoding runs "
                         "in eval mode)")
    record["arch"] = record.get("arch", {})
    if not isinstance(record["arch"], dict):
        raise ValueError(f"{where}.arch must be an object of ArchSpec fields and 'attention.<field>' names")
    unknown_fields = sorted(set(record["arch"]) - _ARCH_FIELDS - _ATTENTION_FIELDS)
    if unknown_fields:
        raise ValueError(f"{where}.arch: unknown field(s) {unknown_fields}; allowed: {sorted(_ARCH_FIELDS)} and "
                         f"{sorted(_ATTENTION_FIELDS)}")
    record["optimizer"] = record.get("optimizer")
    if record["optimizer"] is not None and record["optimizer"] not in OPTIMIZER_IMPLEMENTATIONS:
        raise ValueError(f"{where}.optimizer={record['optimizer']!r} must be one of {list(OPTIMIZER_IMPLEMENTATIONS)}")
    return record


def load_records(path: str | Path = TIMINGS_FILE) -> list[dict[str, Any]]:
    """The validated records of a timings file; ids must be unique."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("records"), list) or not data["records"]:
        raise ValueError(f"{path}: must be an object with a non-empty 'records' list")
    records = [check_record(r, f"{Path(path).name}.records[{i}]") for i, r in enumerate(data["records"])]
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: record ids must be unique, got duplicates of "
                         f"{sorted({i for i in ids if ids.count(i) > 1})}")
    return records


def _changed(spec: Any, changes: dict[str, Any], where: str) -> Any:
    """`spec` (a frozen dataclass) with `changes`, each value of its field's current type."""
    for name, value in changes.items():
        current = getattr(spec, name)
        if current is not None and type(value) is not type(current):
            raise ValueError(f"{where}.{name}={value!r} must be a {type(current).__name__} like {current!r}")
    return replace(spec, **changes)


def record_arch(record: dict[str, Any]) -> ArchSpec:
    """The record's model (a name or a config.json object) resolved, with its `arch` changes applied: ArchSpec
    fields directly, "attention.<field>" on every layer group's attention (ArchSpec checks the result)."""
    model, where = record["model"], f"record {record['id']!r}.arch"
    arch = resolve(model).arch if isinstance(model, str) else from_config_dict(model, record["id"], "record").arch
    changes = record.get("arch", {})
    top = {k: v for k, v in changes.items() if not k.startswith("attention.")}
    attention = {k.removeprefix("attention."): v for k, v in changes.items() if k.startswith("attention.")}
    groups = tuple(replace(g, attention=_changed(g.attention, attention, where)) for g in arch.layer_groups)
    return _changed(replace(arch, layer_groups=groups), top, where)


def _seconds_by_phase(record: dict[str, Any], mode: str, estimate: str, dropout: bool) -> dict[str, float]:
    """Predicted seconds per phase of `mode` at the record's shape on its profile's device, over the ops its scope
    covers; `dropout`: the module in training mode."""
    arch = record_arch(record)
    profile = load_profile(record["hardware"])
    workload = Workload(mode, record["batch"], record["seq_len"], record["dtype"], device=profile.device_type,
                        dropout=dropout, optimizer=record.get("optimizer"),
                        master_weights=record.get("master_weights", True))
    rows = predict(arch, profile, workload, estimate, record["attention_kernel"])["ops"]
    if record["scope"] == "layers":
        rows = [r for r in rows if r["name"].startswith(LAYER_OP_PREFIXES)]
    return {phase: sum(r["seconds"] for r in rows if r["phase"] == phase)
            for phase in ("forward", "backward", "optimizer")}


def predicted_seconds(record: dict[str, Any], estimate: str = "likely") -> float:
    """The predictor's time for what the record timed (module docstring)."""
    by_phase = _seconds_by_phase(record, MODES[record["mode"]], estimate, record.get("dropout", False))
    if record["mode"] in ("forward", "decode"):
        seconds = by_phase["forward"]
    elif record["mode"] == "forward_backward":
        seconds = by_phase["forward"] + by_phase["backward"]
    else:
        seconds = record.get("micro_batches", 1) * (by_phase["forward"] + by_phase["backward"]) + by_phase["optimizer"]
    if record.get("eval_forwards", 0):
        seconds += record["eval_forwards"] * _seconds_by_phase(record, "forward", estimate, False)["forward"]
    return seconds


def validate_timings(path: str | Path = TIMINGS_FILE, estimate: str = "likely") -> dict[str, Any]:
    """One row per record (published and predicted seconds, error) and a summary of |error| (median, max, how
    many within `TOLERANCE`), over all records and over those not marked doubtful."""
    rows = []
    for record in load_records(path):
        predicted = predicted_seconds(record, estimate)
        error = predicted / record["published_s"] - 1
        rows.append({"id": record["id"], "hardware": record["hardware"], "mode": record["mode"],
                     "scope": record["scope"], "batch": record["batch"], "seq_len": record["seq_len"],
                     "dtype": record["dtype"], "attention_kernel": record["attention_kernel"],
                     "micro_batches": record["micro_batches"], "dropout": record["dropout"],
                     "optimizer": record["optimizer"], "published_s": record["published_s"],
                     "predicted_s": predicted, "error": error, "within": abs(error) <= TOLERANCE,
                     "doubtful": record.get("doubtful", ""), "url": record["source"]["url"]})

    def summary(selected: list[dict[str, Any]]) -> dict[str, Any]:
        return {"records": len(selected), **abs_error_summary([r["error"] for r in selected], TOLERANCE)}

    trusted = [r for r in rows if not r["doubtful"]]
    return {"estimate": estimate, "tolerance": TOLERANCE, "rows": rows, "summary": summary(rows),
            "summary_not_doubtful": summary(trusted),
            "passed": all(r["within"] for r in trusted)}
