"""`python -m profiler simulate`: JSON keys, table, plot, benchmark, one-line errors with exit status 2."""

import json
import subprocess
import sys

import pytest

from profiler.cli import main
from simulator import simulate

RESULT_KEYS = {"architecture", "training_days", "training_sufficiency", "params", "complexity_ne_raw",
               "complexity_qps_raw", "complexity_ne", "complexity_qps", "complexity_ne_clipped",
               "complexity_qps_clipped", "ne_without_noise", "qps_without_noise", "noise_scale", "noise", "ne", "qps",
               "seed"}


def run_cli(capsys, *argv):
    code = main(["simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_is_the_result(capsys):
    code, out, _ = run_cli(capsys, "--arch", "[[64,64],[512]]", "--days", "30", "--noise", "--seed", "0",
                           "--format", "json")
    report = json.loads(out)
    assert code == 0 and set(report) == RESULT_KEYS and report["seed"] == 0
    assert report == {**simulate([[64, 64], [512]], 30, noise=True, seed=0).to_dict(), "seed": 0}


def test_table(capsys):
    code, out, _ = run_cli(capsys, "--arch", json.dumps([[2048] * 5] * 5), "--days", "90")
    assert code == 0
    assert "params per sub-arch  17,856,522 · 17,856,522" in out and "training sufficiency t = 1.0000" in out
    assert "clipped to [0, 1]" in out and "QPS                  500.0 queries/s" in out


def test_config_file(capsys, tmp_path):
    path = tmp_path / "sim.json"
    path.write_text('{"MACHINE_EFFICIENCY": 5e12}')
    code, out, _ = run_cli(capsys, "--arch", "[[64]]", "--days", "1", "--config", str(path), "--format", "json")
    assert code == 0 and json.loads(out)["qps"] == 100_000


def test_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "ne.png"
    code, out, _ = run_cli(capsys, "--arch", "[[64,64],[512]]", "--days", "30", "--plot", str(path))
    assert code == 0 and "NE" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run_cli(capsys, "--plot", str(tmp_path / "refs.png"))  # reference networks only
    assert code == 0 and out == "" and (tmp_path / "refs.png").stat().st_size > 0


def test_benchmark_runs(capsys):
    code, out, _ = run_cli(capsys, "--benchmark", "20", "--format", "json")
    figures = json.loads(out)
    assert code == 0 and figures["architectures"] == 20 and figures["simulate_per_call_us"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--arch", "[[64,64],[512]", "--days", "3"], "argument --arch: '[[64,64],[512]' is malformed JSON"),
    (["--arch", "null", "--days", "3"], "argument --arch: 'null' is null, not a JSON list"),
    (["--arch", '{"a": 1}', "--days", "3"], "argument --arch: '{\"a\": 1}' is an object, not a JSON list"),
    (["--arch", "[" * 100_000, "--days", "3"], "argument --arch: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' is malformed"),
    (["--arch", "[[NaN]]", "--days", "3"], "architecture[0][0]=nan must be an integer width"),
    (["--arch", "[[64,64],[4096]]", "--days", "3"], "architecture[1][0]=4096 is outside FLAX_RANGE"),
    (["--arch", "[[64.5]]", "--days", "3"], "architecture[0][0]=64.5 must be an integer width in [64, 2048]"),
    (["--arch", "[]", "--days", "3"], "architecture has 0 sub-architectures; allowed 1..5"),
    (["--arch", "[[64]]", "--days", "-2"], "argument --days: '-2' must be a finite number >= 0"),
    (["--arch", "[[64]]", "--days", "nan"], "argument --days: 'nan' must be a finite number >= 0"),
    (["--arch", "[[64]]", "--days", "soon"], "argument --days: 'soon' must be a finite number"),
    (["--arch", "[[64]]"], "--days is required with --arch"),
    ([], "--arch is required"),
    (["--arch", "[[64]]", "--days", "3", "--noise", "--seed", "-1"], "argument --seed: '-1' must be an integer in [0, 9223372036854775807]"),
    (["--arch", "[[64]]", "--days", "3", "--seed", "1"], "--seed seeds the noise: pass --noise with it"),
    (["--benchmark", "0"], "argument --benchmark: '0' must be an integer in [1, 1000000]"),
    (["--plot", "/nonexistent/ne.png"], "argument --plot: directory '/nonexistent' does not exist"),
    (["--arch", "[[64]]", "--days", "3", "--config", "/nonexistent/sim.json"], "cannot be read"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
    assert err.startswith("profiler simulate: error: ")


def test_module_entry_point_imports_neither_torch_nor_matplotlib():
    code = ("import sys; from profiler.cli import main; rc = main(['simulate', '--arch', '[[64]]', '--days', '1']); "
            "assert rc == 0 and 'torch' not in sys.modules and 'matplotlib' not in sys.modules, sorted(sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "NE" in proc.stdout
