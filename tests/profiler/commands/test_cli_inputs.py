"""The command line's validation layer (`profiler.commands.arguments`): each known bad input of issue 15 ends in
exit 2 with one line naming the flag and the range, before any long work; what commands print holds no NaN."""

from __future__ import annotations

import argparse
import json
import math

import pytest
from profiler_testing import SHIPPED

from profiler.cli import main
from profiler.commands import arguments as A
from profiler.source import MODELS_DIR


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, ""), err
    assert err.startswith(f"profiler {argv[0]}: error: ") and err.count("\n") == 1, err
    assert message in err, err


@pytest.mark.parametrize("argv, message", [
    (["predict", "tiny", "--hardware", "cpu_generic", "--top", "-1"], "argument --top: '-1' must be an integer in [0,"),
    (["estimate-training", "tiny", "--hardware", "cpu_generic", "--sequences", "8", "--extra-params", "inf"],
     "argument --extra-params: 'inf' must be an integer in [0, 9007199254740992]"),
    (["estimate-training", "tiny", "--hardware", "cpu_generic", "--sequences", "8", "--extra-params", "1.5"],
     "argument --extra-params: '1.5' must be an integer"),
    (["estimate-training", "tiny", "--hardware", "cpu_generic", "--tokens", "1e400"], "argument --tokens: '1e400'"),
    (["predict", "tiny", "--hardware", "cpu_generic", "--seq-len", "2048", "--mode", "decode"],
     "--seq-len (the cached context) + 1=2,049 is past tiny's positions: it must be <= 2,048"),
    (["predict", "tiny", "--hardware", "no_such_device"], "argument --hardware: hardware profile 'no_such_device' is "
                                                          "neither a file nor one of"),
    (["predict", "tiny", "--hardware", "cpu_generic", "--dtype", "int4"], "argument --dtype: invalid choice: 'int4'"),
    (["measure", "tiny", "--mode", "generate", "--seq-len", "2040", "--new-tokens", "9"],
     "--seq-len + --new-tokens=2,049 is past tiny's positions: it must be <= 2,048"),
    (["measure", "tiny", "--batch-sweep", "1,,2"], "argument --batch-sweep: '1,,2' must be comma-separated integers"),
    (["measure", "tiny", "--memory-limit", "lots"], "argument --memory-limit: memory='lots' must be a positive size"),
    (["measure", "tiny", "--device", "cuda:x"], "argument --device: 'cuda:x' must be auto, cpu, cuda, cuda:N or mps"),
    (["measure", "tiny", "--threads", "0"], "argument --threads: '0' must be an integer in [1, 1024]"),
    (["fit", "gpt2", "--memory", "1GiB", "--seq-len", "1025"], "--seq-len=1,025 is past gpt2's positions"),
    (["fit", "tiny", "--memory=-3GB"], "argument --memory: memory='-3GB' must be a positive size"),
    (["validate", "tiny", "--tolerance", "nan"], "argument --tolerance: 'nan' must be a finite number >= 0"),
    (["compare", "--modes", "forward,generate"], "argument --modes: 'forward,generate' must be comma-separated "
                                                 "names, each one of forward, train, prefill, decode"),
    (["compare", "--new-tokens", "0"], "argument --new-tokens: '0' must be an integer in [1,"),
    (["compare", "--sizes", "tiny", "--seq-lens", "2040", "--new-tokens", "8"],
     "--seq-lens + --new-tokens + 1 (prefill, decode)=2,049 is past tiny's positions"),
    (["report", "tiny", "--seq-len", "2040"], "--seq-len + 17 generated tokens (the timing's decode; --no-timing: "
                                              "--seq-len alone)=2,057 is past tiny's positions"),
    (["compare", "--seq-lens", "8,0"], "argument --seq-lens: '8,0' must be comma-separated integers, each in [1,"),
    (["compare", "--sizes", "tiny", "--seq-lens", "4096", "--modes", "forward,train"],
     "--seq-lens=4,096 is past tiny's positions"),
    (["simulate", "--arch", "null", "--days", "1"], "argument --arch: 'null' is null, not a JSON list"),
    (["simulate", "--arch", "7", "--days", "1"], "argument --arch: '7' is a number, not a JSON list"),
])
def test_known_bad_inputs_end_in_one_line_naming_the_flag(capsys, argv, message):
    assert_one_line_error(capsys, argv, message)


@pytest.mark.parametrize("argv, message", [
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["analyze", "tiny", "--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_an_unknown_command_or_flag_is_one_line_too(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("profiler: error: ") and message in err


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "analyze", "--help")
    assert code == 0 and "--seq-len" in out


def test_a_length_default_is_capped_at_the_model_s_positions(capsys):
    """gpt2 has 1,024 positions: analyze's default 2,048 tokens becomes 1,024 (generate_peak's prompt 1,024 less the
    32 generated), an explicit 2,048 is an error."""
    code, out, _ = run(capsys, "analyze", "gpt2", "--format", "json")
    workload = json.loads(out)["workload"]
    assert code == 0 and (workload["seq_len"], workload["prompt"]) == (1024, 1024 - 32)
    assert_one_line_error(capsys, ["analyze", "gpt2", "--seq-len", "2048"], "--seq-len=2,048 is past gpt2's positions")


@pytest.mark.parametrize("content, message", [
    (b'{"model_type": "llama"\xff}', "not UTF-8 text"),
    (b"\xef\xbb\xbf{}", "not valid JSON"),  # a byte-order mark is not JSON text
    (b'{"model_type": "llama",', "not valid JSON"),
    (b'{"model_type": "llama", "hidden_size": NaN}', "not valid JSON (NaN is not a JSON number)"),
    (b'{"model_type": "llama", "rope_theta": 1e999}', "not valid JSON (1e999 overflows a float)"),
    (b"[" * 100_000, "not valid JSON"),
    (b"[1, 2]", "a config must be a JSON object, got list"),
])
def test_a_config_file_that_is_not_a_json_object_names_its_path(capsys, tmp_path, content, message):
    path = tmp_path / "broken_config.json"
    path.write_bytes(content)
    for argv in (["analyze", str(path)], ["validate", str(path)], ["measure", str(path)]):
        assert_one_line_error(capsys, argv, f"argument model: {path}: {message}")


def test_a_hardware_profile_that_is_not_utf8_names_its_path(capsys, tmp_path):
    path = tmp_path / "gpu.json"
    path.write_bytes(b"\xff\xfe{}")
    assert_one_line_error(capsys, ["predict", "tiny", "--hardware", str(path)], f"{path}: not UTF-8 text")


def test_calibrate_into_a_missing_directory_fails_before_measuring(capsys, tmp_path, monkeypatch):
    from profiler.measuring import calibration

    monkeypatch.setattr(calibration, "calibrate", lambda **_: pytest.fail("calibrate ran although --output is bad"))
    assert_one_line_error(capsys, ["calibrate", "--quick", "--output", str(tmp_path / "missing" / "cpu.json")],
                          f"argument --output/-o: directory '{tmp_path / 'missing'}' does not exist")
    assert_one_line_error(capsys, ["calibrate", "--output", str(tmp_path)], "is a directory, not a file name")


@pytest.mark.parametrize("command, flag", [("compare", "--out"), ("report", "--output-dir")])
def test_an_output_directory_holds_one_run(capsys, tmp_path, monkeypatch, command, flag):
    from profiler.commands import compare, report  # where the commands look the names up

    monkeypatch.setattr(compare, "calibrated_comparison", lambda *a, **k: pytest.fail("work started"))
    monkeypatch.setattr(report, "report", lambda *a, **k: pytest.fail("work started"))
    (tmp_path / "earlier_run.json").write_text("{}")
    argv = [command] + (["tiny"] if command == "report" else ["--sizes", "tiny"])
    assert_one_line_error(capsys, [*argv, flag, str(tmp_path)], f"{flag} '{tmp_path}' is not empty (it holds another "
                                                                "run); choose a new directory or pass --overwrite")
    assert_one_line_error(capsys, [*argv, flag, str(tmp_path / "earlier_run.json")], "is a file")
    (tmp_path / "locked").mkdir(mode=0o500)
    if not A._writable_directory(tmp_path / "locked"):  # root writes anywhere: nothing to check
        pytest.skip("running as root")
    assert_one_line_error(capsys, [*argv, flag, str(tmp_path / "locked" / "new")], "is not writable")


def test_measure_refuses_a_model_larger_than_the_memory_available_before_building(capsys, monkeypatch):
    from profiler.measuring import harness

    monkeypatch.setattr(harness, "available_memory_bytes", lambda device: 2**20)
    monkeypatch.setattr(harness, "load_model", lambda *_: pytest.fail("the model was built"))
    assert_one_line_error(capsys, ["measure", "tiny", "--device", "cpu", "--seq-len", "8"],
                          "tiny does not fit: forward at batch 1 x seq_len 8 in float32 needs ")
    _, _, err = run(capsys, "measure", "tiny", "--device", "cpu", "--seq-len", "8")
    assert "cpu has 1,048,576 bytes (0.00 GiB) available; nothing was built" in err


def test_available_memory_is_known_on_this_cpu():
    import os

    from profiler.measuring.device import get_device
    from profiler.measuring.harness import available_memory_bytes

    available = available_memory_bytes(get_device("cpu"))
    assert available is not None and 0 < available <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_shipped_model_config_too_large_for_this_machine_is_refused(capsys):
    """deepseek_v3 needs about 2.7 TB in float32: no machine this runs on has it, and nothing is built."""
    assert_one_line_error(capsys, ["measure", "deepseek_v3", "--device", "cpu"], "deepseek_v3 does not fit")


# ----------------------------------------------------------------------------------------- the layer itself
@pytest.mark.parametrize("text, value", [("12", 12), ("1_000", 1000), ("1e6", 10**6), (" 7 ", 7), ("+3", 3)])
def test_integer_reads_whole_numbers(text, value):
    assert A.integer(1, None)(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "nan", "inf", "-inf", "1e400", "10**400", "1" + "0" * 5000, "",
                                  "True", "0x10", "1e16", "seven"])
def test_integer_refuses_the_rest(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be an integer in \[1, 1000000000000000\]"):
        A.integer(1, 10**15)(text)


@pytest.mark.parametrize("text", ["0", "-0.5", "nan", "inf", "1e400", "", "1,5", "x"])
def test_number_refuses_non_finite_and_out_of_range(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be a finite number > 0"):
        A.number(0, low_open=True)(text)


def test_number_bounds_are_named_with_brackets():
    parse = A.number(0, 1, low_open=True)
    assert parse("1") == 1.0 and parse("1e-300") == 1e-300
    with pytest.raises(argparse.ArgumentTypeError, match=r"'0' must be a number in \(0, 1\]"):
        parse("0")


def test_results_with_nan_or_infinity_are_refused_naming_the_field():
    assert A.dumps({"a": [1, 2.5, None, "x"]}) == json.dumps({"a": [1, 2.5, None, "x"]}, indent=2)
    with pytest.raises(ValueError, match=r"result.b\[1\].c=inf is not a finite number"):
        A.dumps({"a": 1.0, "b": [0.0, {"c": math.inf}]})
    with pytest.raises(ValueError, match=r"result.x=nan"):
        A.require_finite({"x": math.nan})


def test_every_json_output_file_in_the_repository_is_strict_json():
    """The shipped model configs read with the strict reader (no NaN, no overflowing numbers)."""
    from profiler.source import read_json

    paths = sorted(MODELS_DIR.glob("*.json"))
    assert {path.stem for path in paths} >= set(SHIPPED)
    for path in paths:
        read_json(path)


def test_a_sweep_refuses_the_batches_over_the_memory_available(capsys, monkeypatch):
    from profiler.formulas.memory import predicted_peak_bytes
    from profiler.measuring import harness
    from profiler.source import resolve

    one = predicted_peak_bytes(resolve("tiny").arch, "forward", 1, 8, "float32", "cpu")
    monkeypatch.setattr(harness, "available_memory_bytes", lambda device: one + 2**20)  # batch 1 fits, 64 does not
    code, out, _ = run(capsys, "measure", "tiny", "--device", "cpu", "--seq-len", "8", "--batch-sweep", "1,64",
                       "--warmup", "0", "--repeats", "1", "--top", "0", "--format", "json")
    runs = json.loads(out)["runs"]
    assert code == 0 and [r["status"] for r in runs] == ["ok", "refused"]
    assert runs[1]["error"].endswith(f"bytes is over the {one + 2**20:,} bytes available on cpu")


@pytest.mark.parametrize("raised, message", [
    (ValueError("hidden_size=0 must be an integer >= 1\n(from config.json)"),
     "profiler simulate: error: hidden_size=0 must be an integer >= 1 (from config.json)\n"),
    (PermissionError(13, "Permission denied", "/some/out.json"), "profiler simulate: error: /some/out.json: "
                                                                 "Permission denied\n"),
])
def test_library_errors_become_one_line_and_exit_2(capsys, monkeypatch, raised, message):
    from profiler.commands import simulate

    def fail(*args, **kwargs):
        raise raised
    monkeypatch.setattr(simulate, "simulate", fail)
    code, out, err = run(capsys, "simulate", "--arch", "[[64]]", "--days", "1")
    assert (code, out, err) == (2, "", message)


def test_fit_s_decoding_batch_stays_within_the_model_s_positions(capsys):
    """tiny has 2,048 positions: the default prompts of 2,048 tokens shorten to 2,048 - 256 new tokens; an explicit
    --decode-context past the end is an error."""
    code, out, _ = run(capsys, "fit", "tiny", "--memory", "1GiB", "--format", "json")
    assert code == 0 and json.loads(out)["workload"]["decode_context"] == 2048 - 256
    assert_one_line_error(capsys, ["fit", "tiny", "--memory", "1GiB", "--decode-context", "2000"],
                          "--decode-context + --new-tokens=2,256 is past tiny's positions: it must be <= 2,048")
    assert_one_line_error(capsys, ["fit", "tiny", "--memory", "1GiB", "--new-tokens", "2048"],
                          "--new-tokens + 1 (a prompt of one token at least)=2,049 is past tiny's positions")


def test_a_model_whose_position_count_is_not_an_integer_is_refused(capsys, tmp_path):
    """Refused here (or, once config reading is strict, when the config is read): either way one line."""
    path = tmp_path / "odd_gpt2.json"
    path.write_text(json.dumps({"model_type": "gpt2", "n_positions": "8", "n_embd": 64, "n_layer": 2, "n_head": 4,
                                "vocab_size": 100}))
    assert_one_line_error(capsys, ["analyze", str(path), "--seq-len", "4"], "='8' must be an integer")
