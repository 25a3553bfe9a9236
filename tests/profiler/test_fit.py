"""fit: the largest batch and context under a budget, by bisection on the memory timelines."""

import json

import pytest

from profiler.arch import from_size
from profiler.cli import main
from profiler.fit import fit, largest, parse_bytes
from profiler.formulas import memory as M


@pytest.mark.parametrize("text, value", [("48GiB", 48 * 2**30), ("80 GB", 80 * 10**9), ("1.5MiB", 1572864),
                                         ("4096", 4096), ("2kib", 2048)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "48 GiBs", "-1GB", "0", "lots"])
def test_parse_bytes_rejects(text):
    with pytest.raises(ValueError, match="must be a positive size"):
        parse_bytes(text)


def test_largest_agrees_with_brute_force():
    for budget in range(0, 200, 7):
        expected = max([n for n in range(1, 50) if 3 * n + 10 <= budget], default=0)
        assert largest(lambda n: 3 * n + 10, budget, 49) == expected


def test_each_answer_fits_and_one_more_does_not():
    arch, budget, seq = from_size("small"), 3 * 2**30, 256
    result = fit(arch, budget, seq_len=seq, dtype="float32", device="cpu", new_tokens=64, decode_context=128)
    for recompute, answer in result["training"].items():
        b = answer["value"]
        peaks = [max(M.training_timeline(arch, n, seq, "float32", recompute=recompute, device="cpu").values())
                 for n in (b, b + 1)]
        assert b > 0 and peaks[0] == answer["peak_bytes"] <= budget < peaks[1]
        assert answer["margin_bytes"] == budget - peaks[0]
    assert result["training"]["full"]["value"] >= result["training"]["none"]["value"]
    batch = result["decode_batch"]["value"]
    assert max(M.generate_timeline(arch, batch, 128, 64, "float32").values()) <= budget
    assert max(M.generate_timeline(arch, batch + 1, 128, 64, "float32").values()) > budget
    context = result["longest_context"]
    assert context["limited_by"] == "max_position_embeddings" and context["value"] == 2048 - 64


def test_nothing_fits_is_zero_with_the_shortfall():
    result = fit(from_size("1b"), 2**30, dtype="float32", device="cpu")
    answer = result["training"]["none"]
    assert answer["value"] == 0 and answer["margin_bytes"] < 0 and answer["phase"] in M.TRAINING_PHASES


def test_cli_json_plot_and_errors(tmp_path, capsys):
    plot = tmp_path / "fit.png"
    assert main(["fit", "llama_7b", "--hardware", "apple_m4_pro", "--memory", "48GiB", "--format", "json",
                 "--plot", str(plot)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["budget_bytes"] == 48 * 2**30 and result["workload"]["device"] == "mps"
    assert set(result["training"]) == {"none", "selective", "full"} and plot.stat().st_size > 0
    assert main(["fit", "llama_7b", "--hardware", "nvidia_h100_sxm"]) == 0
    assert "cuda's optimizer path" in capsys.readouterr().out
    assert main(["fit", "tiny"]) == 2
    assert "needs --hardware NAME or --memory SIZE" in capsys.readouterr().err
