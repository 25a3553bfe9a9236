"""Fuzz of the command line: random argument vectors for every command, run in-process through
`profiler.cli.main`, must end in one of the allowed outcome classes, never in a traceback:

* `ok`: exit 0 with output (JSON output parses as strict JSON: no NaN, no Infinity);
* `error`: exit 2, nothing on stdout, exactly one line on stderr, `profiler[ COMMAND]: error: ...`;
* `failed check`: exit 1 from `validate` or `validate-timings` (a prediction off its reference: a result,
  not a crash);
* `work started`: for the commands that measure (calibrate, measure, compare, report, ops), the measuring function is
  replaced by one that stops the run — every argument check happens before it, so reaching it is the outcome.

Arguments are drawn valid and invalid alike: numbers negative, zero, huge, inf, nan, not numbers; unknown models
and hardware; broken config files; bad choices; both `--flag value` and `--flag=value`. Small models only (tiny,
the shipped configs, analytic or on meta). Each command's test fails unless its examples reached both `error` and
`ok` (`work started` for the measuring commands): one explicit accepted vector and its refused copy run besides
the draws. `failed check` is allowed but not required (the shipped references pass). The counts of each class are
printed at the end of the module (`CLI fuzz outcomes: ...`). PROFILER_FUZZ_EXAMPLES=N runs N examples per command
with fresh randomness.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from profiler.cli import main

EXAMPLES = int(os.environ.get("PROFILER_FUZZ_EXAMPLES", "0"))
OUTCOMES: Counter[str] = Counter()


class WorkStarted(Exception):
    """Raised by the stand-in for a measuring function: the command got past every argument check."""


def fuzz_settings(examples: int):
    return settings(max_examples=EXAMPLES or examples, deadline=None, derandomize=not EXAMPLES, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------------ values
WORDS = st.sampled_from(["", " ", "abc", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "10**400",
                         "1" + "0" * 400, "1" + "0" * 5000, "0x10", "1.5", "1e-3", "-0", "True", "None", "1,2",
                         "[]", "null", "\x00", "--", "-1", "0"])
ANY_NUMBER = st.one_of(
    st.integers(-3, 70).map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    WORDS,
)


def valid_or_not(valid: st.SearchStrategy, invalid: st.SearchStrategy = ANY_NUMBER) -> tuple:
    """A flag's values: (what the flag accepts, anything: accepted or not)."""
    return valid, st.one_of(valid, invalid)


def names(good: list[str], bad: list[str]) -> tuple:
    return valid_or_not(st.sampled_from(good), st.sampled_from(bad))


COUNT = valid_or_not(st.one_of(st.integers(1, 16).map(str), st.sampled_from(["1e1", "1_0", " 2 "])))
LENGTH = valid_or_not(st.one_of(st.integers(1, 4096).map(str), st.sampled_from(["2048", "1e3"])))
SMALL_LENGTH = valid_or_not(st.integers(1, 32).map(str))
NONNEGATIVE = valid_or_not(st.integers(0, 20).map(str))
LARGE_COUNT = valid_or_not(st.one_of(st.integers(1, 10**12).map(str), st.sampled_from(["1e9", "2.5e6"])))
POSITIVE = valid_or_not(st.floats(1e-3, 1e6).map(repr))
FRACTION = valid_or_not(st.floats(0.01, 1.0).map(repr))
SEED = valid_or_not(st.integers(0, 2**63 - 1).map(str))
THREADS = valid_or_not(st.integers(1, 2).map(str))
REPEATS = valid_or_not(st.integers(1, 3).map(str))
GOOD_MODELS = ["tiny", "20m", "gpt2", "llama_7b", "mixtral_8x7b", "deepseek_v3", "qwen3_0.6b", "mistral_7b"]
BAD_MODELS = ["no_such_model", "", "BROKEN:not_utf8", "BROKEN:not_json", "BROKEN:list", "BROKEN:nan", "BROKEN:dir",
              "BROKEN:empty"]
MODELS = names(GOOD_MODELS, BAD_MODELS)
HARDWARE = names(["cpu_generic", "nvidia_h100_sxm", "apple_m4", "nvidia_a100"],
                 ["no_such_gpu", "", "BROKEN:not_utf8", "BROKEN:not_json", "BROKEN:list", "BROKEN:dir",
                  "BROKEN:empty"])
DTYPES = names(["float32", "bfloat16", "float16", "float64"], ["int8", "fp32", "", "float8", "bf16"])
DEVICES = names(["cpu", "auto"], ["cuda", "cuda:0", "cuda:x", "mps", "meta", "tpu", "", "cpu:1"])
FORMATS = names(["table", "json"], ["markdown", "csv", "xml", ""])
SIZES = names(["1GiB", "80GB", "0.5TB", "48 GiB", "12", "1KB"], ["0", "-1GB", "lots", "1e400GB", "inf", ""])
ARCHITECTURES = st.lists(st.lists(st.integers(64, 2048), min_size=1, max_size=5), min_size=1, max_size=5)
ARCH_JSON = valid_or_not(ARCHITECTURES.map(json.dumps), st.one_of(
    st.recursive(st.one_of(st.integers(-10, 3000), st.floats(), st.booleans(), st.none(), st.text(max_size=3)),
                 lambda children: st.lists(children, max_size=6), max_leaves=30).map(json.dumps),
    st.sampled_from(["null", "[]", "[[]]", "{}", "[[64.0]]", "[[NaN]]", "[[1e400]]", "[" * 50_000, "[[64,64],[512]",
                     "[[" + "9" * 400 + "]]", "[[64]]]", "[[True]]"])))


def only_invalid(strategy: st.SearchStrategy) -> tuple:
    return None, strategy


@st.composite
def argument_vector(draw: st.DrawFn, flags: dict[str, tuple | None],
                    required: tuple[tuple[str, ...], ...]) -> list[str]:
    """A random subset of `flags` in random order, each `--flag value` or `--flag=value` (None: a switch). Half
    the vectors take only accepted values and one flag of each `required` group (so that the commands also run),
    the rest anything."""
    all_valid = draw(st.booleans())
    usable = sorted(name for name, pair in flags.items() if pair is None or not all_valid or pair[0] is not None)
    chosen = draw(st.lists(st.sampled_from(usable), unique=True, max_size=len(usable)))
    if all_valid:
        for group in required:
            keep = draw(st.sampled_from(group))
            chosen = [keep] + [name for name in chosen if name not in group]
    argv = []
    for name in draw(st.permutations(chosen)):
        if flags[name] is None:
            argv.append(name)
            continue
        value = draw(flags[name][0] if all_valid else flags[name][1])
        argv += [f"{name}={value}"] if draw(st.booleans()) else [name, value]
    return argv


SWITCH = None
OPTIMIZERS = names(["adamw", "sgd"], ["lion", ""])
# Flags of which a command needs one (and at most one): valid vectors take one of each group.
REQUIRED = {"predict": (("--hardware",),), "estimate-training": (("--hardware",), ("--sequences", "--tokens")),
            "fit": (("--hardware", "--memory"),)}
COMMANDS: dict[str, tuple[tuple | None, dict, int]] = {
    # command: (positional MODEL values or None, flags, examples)
    "analyze": (MODELS, {
        "--batch": COUNT, "--seq-len": LENGTH, "--context": LENGTH, "--grad-accum": COUNT, "--new-tokens": LENGTH,
        "--dtype": DTYPES, "--optimizer": OPTIMIZERS, "--recompute": names(["none", "full", "selective"], ["all"]),
        "--device": names(["cpu", "cuda", "mps"], ["meta", "tpu"]), "--no-master-weights": SWITCH,
        "--attention-kernel": names(["fused", "math"], ["flash"]), "--kv-dtype": names(["float8", "bfloat16"], [""]),
        "--autocast": names(["bfloat16", "float16"], ["float32"]), "--format": names(["table", "json", "csv"], [""]),
        "--training-budget": POSITIVE, "--price-per-hour": POSITIVE, "--peak-tflops": POSITIVE, "--mfu": FRACTION},
        150),
    "predict": (MODELS, {
        "--hardware": HARDWARE, "--batch": COUNT, "--seq-len": LENGTH,
        "--mode": names(["forward", "train", "decode"], ["generate", "x"]), "--dtype": DTYPES,
        "--estimate": names(["likely", "optimistic", "conservative"], ["best", ""]), "--top": NONNEGATIVE,
        "--attention-kernel": names(["fused", "math"], ["flash", ""]),
        "--format": FORMATS}, 100),
    "estimate-training": (MODELS, {
        "--hardware": HARDWARE, "--sequences": LARGE_COUNT, "--tokens": LARGE_COUNT, "--epochs": COUNT,
        "--seq-len": LENGTH, "--micro-batch": COUNT, "--grad-accum": COUNT, "--extra-params": LARGE_COUNT,
        "--dtype": DTYPES, "--prep-rate": POSITIVE, "--eval-sequences": NONNEGATIVE, "--format": FORMATS}, 100),
    "fit": (MODELS, {
        "--hardware": HARDWARE, "--memory": SIZES, "--seq-len": LENGTH, "--dtype": DTYPES, "--optimizer": OPTIMIZERS,
        "--autocast": names(["bfloat16", "float16"], ["float32"]), "--device": names(["cpu", "cuda", "mps"], ["tpu"]),
        "--new-tokens": LENGTH, "--decode-context": LENGTH, "--format": FORMATS,
        "--plot": only_invalid(st.sampled_from(["/nonexistent/dir/fit.png", "BROKEN:dir"]))}, 100),
    "simulate": (None, {
        "--arch": ARCH_JSON, "--days": valid_or_not(st.floats(0, 1e6).map(repr)), "--noise": SWITCH, "--seed": SEED,
        "--format": FORMATS,
        "--config": only_invalid(st.sampled_from(["BROKEN:not_utf8", "BROKEN:not_json", "BROKEN:list", "BROKEN:nan",
                                                  "BROKEN:dir", "BROKEN:empty", "BROKEN:simulator_bad_value",
                                                  "/nonexistent.json"])),
        "--plot": only_invalid(st.sampled_from(["/nonexistent/dir/ne.png", "BROKEN:dir"])),
        "--benchmark": only_invalid(st.one_of(WORDS, st.sampled_from(["0", "-5", "1000001", "1e400"])))}, 150),
    "validate": (names(["tiny"], ["no_such_model", "BROKEN:not_json", "BROKEN:nan"]), {
        "--batch": SMALL_LENGTH, "--seq-len": SMALL_LENGTH, "--tolerance": valid_or_not(st.floats(0, 1).map(repr)),
        "--device": names(["meta"], ["x", "tpu"]), "--format": FORMATS}, 10),
    # Measuring commands: the measuring function is replaced (see WorkStarted), so only the checks run.
    "measure": (MODELS, {
        "--mode": names(["forward", "train", "generate"], ["decode"]), "--batch": COUNT,
        "--batch-sweep": valid_or_not(st.lists(st.integers(1, 64).map(str), min_size=1, max_size=4).map(",".join),
                                      st.lists(ANY_NUMBER, max_size=4).map(",".join)),
        "--seq-len": LENGTH, "--new-tokens": SMALL_LENGTH, "--device": DEVICES, "--dtype": DTYPES,
        "--warmup": NONNEGATIVE, "--repeats": REPEATS, "--threads": THREADS, "--hardware": HARDWARE,
        "--top": NONNEGATIVE, "--seed": SEED, "--memory-limit": SIZES, "--format": FORMATS}, 100),
    "calibrate": (None, {
        "--output": names(["OUT:profile.json"], ["/nonexistent/dir/p.json", "BROKEN:dir", ""]),
        "--device": DEVICES, "--quick": SWITCH, "--base": HARDWARE, "--power": POSITIVE, "--threads": THREADS,
        "--format": FORMATS}, 60),
    "compare": (None, {
        "--sizes": valid_or_not(st.lists(st.sampled_from(GOOD_MODELS), min_size=1, max_size=3).map(",".join),
                                st.lists(st.sampled_from(GOOD_MODELS + BAD_MODELS), min_size=1,
                                         max_size=3).map(",".join)),
        "--batches": valid_or_not(st.lists(st.integers(1, 8).map(str), min_size=1, max_size=3).map(",".join),
                                  st.lists(ANY_NUMBER, max_size=3).map(",".join)),
        "--seq-lens": valid_or_not(st.lists(st.integers(1, 512).map(str), min_size=1, max_size=3).map(",".join),
                                   st.lists(ANY_NUMBER, max_size=3).map(",".join)),
        "--modes": names(["forward", "train", "forward,train", "prefill,decode"], ["generate", "", "forward,,train"]),
        "--new-tokens": COUNT,
        "--device": DEVICES, "--threads": THREADS, "--repeats": REPEATS, "--warmup": NONNEGATIVE,
        "--statistic": names(["min", "median"], ["average"]), "--clock": names(["auto", "wall", "cpu"], ["gpu"]),
        "--out": names(["OUT:fresh"], ["BROKEN:dir", "BROKEN:file_not_dir", "/nonexistent_root_dir/x/y"]),
        "--overwrite": SWITCH, "--format": FORMATS}, 60),
    "report": (MODELS, {
        "--batch": COUNT, "--seq-len": LENGTH, "--device": DEVICES, "--threads": THREADS, "--repeats": REPEATS,
        "--no-timing": SWITCH, "--format": names(["markdown", "json"], ["table"]), "--overwrite": SWITCH,
        "--output-dir": names(["OUT:fresh"], ["BROKEN:dir", "BROKEN:file_not_dir"])}, 60),
    "ops": (MODELS, {
        "--mode": names(["forward", "train"], ["decode", ""]), "--batch": COUNT, "--seq-len": LENGTH,
        "--device": DEVICES, "--dtype": DTYPES, "--threads": THREADS, "--clock": names(["auto", "wall", "cpu"], ["gpu"]),
        "--hardware": HARDWARE, "--estimate": names(["likely", "optimistic", "conservative"], ["best"]),
        "--repeats": REPEATS, "--warmup": NONNEGATIVE, "--top": NONNEGATIVE, "--format": FORMATS}, 60),
    "validate-timings": (None, {
        "--records": only_invalid(st.sampled_from(["BROKEN:not_utf8", "BROKEN:not_json", "BROKEN:list", "BROKEN:nan",
                                                   "BROKEN:dir", "BROKEN:empty", "/nonexistent.json", ""])),
        "--estimate": names(["optimistic", "likely", "conservative"], ["best", ""]),
        "--format": names(["table", "markdown", "json"], ["csv", ""])}, 30),
}
# One vector per command that is accepted (ok, or work started): run as an explicit example with its copy refused
# for a bad --format, so that each command reaches both classes whatever the draws (which change with the modules
# loaded: Hypothesis draws constants from them).
ACCEPTED = {"analyze": ("tiny", []), "predict": ("tiny", ["--hardware", "cpu_generic"]),
            "estimate-training": ("tiny", ["--hardware", "cpu_generic", "--tokens", "1000000"]),
            "fit": ("tiny", ["--memory", "80GB"]), "simulate": (None, ["--arch", "[[64,64],[512]]", "--days", "1"]),
            "validate": ("tiny", ["--device", "meta", "--batch", "1", "--seq-len", "8"]),
            "measure": ("tiny", []), "calibrate": (None, ["--output", "OUT:profile.json"]),
            "compare": (None, ["--out", "OUT:fresh"]), "report": ("tiny", ["--output-dir", "OUT:fresh"]),
            "ops": ("tiny", []), "validate-timings": (None, [])}
MEASURING = {"measure": ("profiler.measuring.harness", "measure"),
             "calibrate": ("profiler.measuring.calibration", "calibrate"),
             "compare": ("profiler.commands.compare", "calibrated_comparison"),
             "report": ("profiler.commands.report", "report"),
             "ops": ("profiler.commands.ops", "op_comparison")}


# ---------------------------------------------------------------------------------------------- the files
@pytest.fixture(scope="module")
def broken_files(tmp_path_factory):
    """Paths that the BROKEN:name placeholders stand for."""
    root = tmp_path_factory.mktemp("broken")
    contents = {"not_utf8": b'{"model_type": "llama", "x": "\xff"}', "not_json": b'{"model_type": ',
                "list": b"[1, 2, 3]", "nan": b'{"model_type": "llama", "hidden_size": NaN}', "empty": b"",
                "file_not_dir": b"a file", "simulator_bad_value": b'{"MIN_QPS": -1, "DEPTH_RANGE": [5, 1]}'}
    paths = {}
    for name, data in contents.items():
        paths[name] = root / f"{name}.json"
        paths[name].write_bytes(data)
    paths["dir"] = root / "a_directory_with_files"
    paths["dir"].mkdir()
    (paths["dir"] / "earlier.json").write_text("{}")
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture(scope="module", autouse=True)
def report_outcomes(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = "CLI fuzz outcomes: " + ", ".join(f"{name} {count}" for name, count in sorted(OUTCOMES.items()))
    if reporter is not None:
        reporter.write_line("\n" + line)
    print(line)


def concrete(argv: list[str], broken: dict[str, str], out_dir) -> list[str]:
    """Placeholders replaced: BROKEN:name -> a broken file; OUT:name -> a fresh path under `out_dir`."""
    def path(match: re.Match) -> str:
        kind, name = match.groups()
        return broken[name] if kind == "BROKEN" else str(out_dir / name)
    return [re.sub(r"(BROKEN|OUT):(\w+)", path, arg) for arg in argv]


def strict_json(text: str):
    def refuse(name: str):
        raise AssertionError(f"{name} in JSON output")
    return json.loads(text, parse_constant=refuse)


def outcome(command: str, argv: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except WorkStarted:
        return "work started"
    out, err = out.getvalue(), err.getvalue()
    assert "Traceback" not in err, err
    if code == 0:
        assert out.strip(), (argv, err)
        if "json" in argv or "--format=json" in argv:
            strict_json(out)
        return "ok"
    if code == 1 and command in ("validate", "validate-timings"):
        return "failed check"
    assert code == 2, (argv, code, out, err)
    assert out == "" and err.count("\n") == 1 and err.endswith("\n"), (argv, out, err)
    assert err.startswith(("profiler: error: ", f"profiler {command}: error: ")), (argv, err)
    return "error"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_random_argument_vectors_end_in_an_allowed_outcome(command, broken_files, tmp_path, monkeypatch):
    if command in MEASURING:
        module, name = MEASURING[command]

        def stop(*args, **kwargs):
            raise WorkStarted
        monkeypatch.setattr(f"{module}.{name}", stop)
    model, flags, examples = COMMANDS[command]
    models = st.just(None) if model is None else st.one_of(model[0], model[1])
    vectors = st.tuples(models, argument_vector(flags, REQUIRED.get(command, ())))
    counter = iter(range(10**9))
    seen: Counter[str] = Counter()

    @fuzz_settings(examples)
    @given(vectors)
    def check(vector):
        model_arg, argv = vector
        out_dir = tmp_path / f"run{next(counter)}"
        out_dir.mkdir()
        full = concrete([command] + ([model_arg] if model_arg is not None else []) + argv, broken_files, out_dir)
        seen[outcome(command, full)] += 1

    model_arg, argv = ACCEPTED[command]
    check = example((model_arg, argv + ["--format", "nonsense"]))(example((model_arg, argv))(check))
    check()
    OUTCOMES.update({f"{command} {name}": count for name, count in seen.items()})
    # Both the refusals and the runs were reached.
    assert {"error", "work started" if command in MEASURING else "ok"} <= set(seen), seen
