"""Hypothesis fuzz of the training command line's argument vectors: every vector ends in exit 0, or in exit 2 with
one line naming the flag (or exit 1 or 2 with one line for a diverged run or a setting the data cannot meet);
never a traceback. The first fuzz stops at the call of `train` (hundreds of vectors); the second trains for real."""

import collections
import math
import re
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import complexity.training.cli as cli
from complexity.training.train import TrainConfig, TrainResult

INT_FLAGS = ("--vocab-size", "--seq-len", "--micro-batch-size", "--grad-accum", "--max-steps", "--warmup-steps",
             "--eval-interval", "--eval-batches", "--save-interval", "--seed")
FLOAT_FLAGS = ("--lr", "--min-lr-ratio", "--weight-decay", "--grad-clip", "--eval-fraction", "--peak-tflops")
CHOICE_FLAGS = {"--precision": ("auto", "fp32", "bf16", "fp8", ""), "--distributed": ("none", "tp"),
                "--size": ("tiny", "huge")}
HOSTILE = ("0", "-1", "1", "2", "0.5", "1.5", "nan", "inf", "-inf", "1e400", "-0", "abc", "", "0x10", " 3",
           "1_000", str(2**64), str(2**64 - 1), "9" * 400, "9" * 5000, "1e-320", "True")
ONE_LINE_FLAG_ERROR = re.compile(r"complexity-train: error: (argument (--[a-z-]+)|the following arguments).*\n")
OUTCOMES = collections.Counter()


def value_strategy(flag: str) -> st.SearchStrategy[str]:
    if flag in CHOICE_FLAGS:
        return st.sampled_from(CHOICE_FLAGS[flag])
    valid = st.integers(0, 300).map(str) if flag in INT_FLAGS else st.floats(0, 2, allow_nan=False).map(repr)
    wild = st.integers(-2**70, 2**70).map(str) | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    return st.one_of(valid, valid, valid, wild, st.sampled_from(HOSTILE))


@st.composite
def argument_vectors(draw, flags=INT_FLAGS + FLOAT_FLAGS + tuple(CHOICE_FLAGS)) -> list[str]:
    chosen = draw(st.lists(st.sampled_from(flags), unique=True, max_size=6))
    argv = []
    for flag in chosen:
        argv += [flag, draw(value_strategy(flag))]
    return argv


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argument_vectors(), with_data=st.integers(0, 4).map(bool))  # 4 in 5 with --data
def test_argument_vectors_end_in_success_or_one_line_naming_the_flag(argv, with_data, corpus, monkeypatch,
                                                                      capsys):
    reached = []
    monkeypatch.setattr(cli, "train", lambda cfg: reached.append(cfg) or TrainResult({}, {}, None))
    base = (["--data", str(corpus)] if with_data else []) + ["--output-dir", tempfile.mkdtemp(), "--no-progress"]
    try:
        code = cli.train_main(base + argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    if code == 0:
        OUTCOMES["exit 0 (reached train)"] += 1
        assert len(reached) == 1 and err == ""
        cfg = reached[0]
        cfg.validate()  # what reached train is in range
        assert all(math.isfinite(getattr(cfg, name)) for name in ("lr", "min_lr_ratio", "weight_decay", "grad_clip"))
    else:
        OUTCOMES["exit 2, one line naming the flag"] += 1
        assert code == 2 and not reached
        match = ONE_LINE_FLAG_ERROR.fullmatch(err)
        assert match, err
        assert match.group(2) is None or match.group(2) in argv or match.group(2) == "--data", err


@pytest.fixture(scope="module", autouse=True)
def report_outcomes():
    yield
    print("\nCLI fuzz outcomes:", dict(OUTCOMES))


REAL_FLAGS = {  # a run of one or two steps of the tiny model whatever the draw; the rest is drawn wildly
    "--lr": st.sampled_from(["1e-3", "1e30", "1e-300", "nan", "3e38"]),
    "--micro-batch-size": st.sampled_from(["1", "2", "1000", str(10**12)]),
    "--seq-len": st.sampled_from(["2", "16", "33", str(10**9)]),
    "--grad-accum": st.sampled_from(["1", "3", str(10**15)]),
    "--warmup-steps": st.sampled_from(["0", "1", str(10**30)]),
    "--eval-batches": st.sampled_from(["1", str(10**30)]),
    "--seed": st.sampled_from(["0", str(2**64 - 1), str(2**64)]),
    "--grad-clip": st.sampled_from(["0", "1e-30", "1e30"]),
    "--weight-decay": st.sampled_from(["0", "1e30"]),
    "--eval-fraction": st.sampled_from(["0.001", "0.5"]),
}


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(draw=st.fixed_dictionaries({}, optional=REAL_FLAGS), max_steps=st.sampled_from(["1", "2"]))
def test_real_runs_end_in_success_or_one_line(draw, max_steps, corpus, tokenizer_file, model_config_file, capsys):
    argv = ["--data", str(corpus), "--output-dir", tempfile.mkdtemp(), "--tokenizer", str(tokenizer_file),
            "--config", str(model_config_file), "--max-steps", max_steps, "--save-interval", "1", "--eval-interval",
            "1", "--no-progress", "--precision", "fp32"]
    for flag, value in draw.items():
        argv += [flag, value]
    if "--seq-len" not in draw:
        argv += ["--seq-len", "16"]
    try:
        code = cli.train_main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2)
    OUTCOMES[f"real run: exit {code}"] += 1
    if code == 0:
        assert err == "" or "error" not in err
    else:
        lines = [line for line in err.splitlines() if line.startswith(("error:", "complexity-train: error:"))]
        assert len(lines) == 1 and "Traceback" not in err, err


def test_argparse_config_is_the_dataclass():
    """Every TrainConfig field has its flag, so the fuzz above reaches every field."""
    dests = {a.dest for a in cli.train_parser()._actions} - {"help"}
    assert dests == set(TrainConfig.__dataclass_fields__)
