"""`python -m profiler report`: the main job joins analyze, validate and compare."""

from __future__ import annotations

import json

import pytest

from profiler.analysis import analyze
from profiler.checks import compare
from profiler.checks.report import report
from profiler.cli import main
from profiler.render.report import render_markdown
from profiler.source import resolve
from profiler.workload import DECODE_TOKENS

pytest.importorskip("transformers")


def test_report_without_timing_joins_analysis_and_validation(capsys):
    assert main(["report", "tiny", "--seq-len", "16", "--no-timing", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"model", "analysis", "validation"}
    assert result["analysis"] == json.loads(json.dumps(analyze(resolve("tiny").arch, batch=1, seq_len=16, device="cpu",
                                                               dtype="float32", new_tokens=DECODE_TOKENS + 1)))
    assert result["validation"]["passed"] and result["validation"]["max_rel_error"] == 0


def test_the_analysis_generation_is_the_timing_s_and_fits_the_positions(monkeypatch):
    """The analysis's generate_peak generates what the timing does (DECODE_TOKENS + 1 tokens) after the prompt, cut
    so that both fit the model's positions: at seq_len 2,048 (tiny's all) the prompt is 2,048 − 17."""
    from profiler.checks import validate

    monkeypatch.setattr(validate, "validate", lambda *args: None)  # the counted FLOPs are tested elsewhere
    monkeypatch.setattr(validate, "summary", lambda result: {})
    for seq_len, prompt in ((16, 16), (2048, 2048 - DECODE_TOKENS - 1)):
        workload = report(resolve("tiny"), seq_len=seq_len, timing=False)[0]["analysis"]["workload"]
        assert (workload["seq_len"], workload["prompt"], workload["new_tokens"]) == (seq_len, prompt,
                                                                                    DECODE_TOKENS + 1)


def test_timing_section_comes_from_compare(monkeypatch):
    calls = []

    def fake_comparison(points, device, repeats):
        calls.append((points, device, repeats))
        rows = [{"mode": mode, "measured_s": 0.010, "predicted_s": 0.011, "error": 0.1, "bound": "compute",
                 "mfu": 0.25} for _, mode, _, _ in points]
        timing = {"statistic": "min", "environment": {"device": "cpu", "threads": 1, "clock": "cpu", "torch": "x"},
                  "rows": rows}
        return timing, "the calibrated profile"

    monkeypatch.setattr(compare, "calibrated_comparison", fake_comparison)
    tiny = resolve("tiny")
    result, profile, points = report(tiny, batch=2, seq_len=8, device="cpu", repeats=3)
    assert calls == [([(tiny, mode, 2, 8) for mode in ("forward", "train", "prefill", "decode")], "cpu", 3)]
    assert profile == "the calibrated profile" and points == calls[0][0]
    text = render_markdown(result)
    assert "## Time on this device: measured and predicted" in text
    assert "| train | 10.00 | 11.00 | +10.0% | compute | 25.0% | - |" in text
    assert "| prefill | 10.00 | 11.00 |" in text and "| decode | 10.00 | 11.00 |" in text
    assert "Decode: ms per generated token" in text
    assert "## Validation against counted FLOPs: passed" in text


def test_report_writes_its_files(tmp_path, capsys):
    assert main(["report", "tiny", "--seq-len", "8", "--no-timing", "--output-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "report.md").read_text() == printed
    assert (tmp_path / "memory_timeline.png").stat().st_size > 0
    assert json.loads((tmp_path / "report.json").read_text())["model"] == "tiny"


@pytest.mark.parametrize("argv", [["report", "tiny", "--seq-len", "0", "--no-timing"],
                                  ["report", "no_such_model", "--no-timing"]])
def test_bad_input_is_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("profiler report: error:") and "\n" not in err


def test_the_command_restores_torch_threads(capsys):
    """Thread settings belong to the command and end with it: the caller's count is untouched."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    assert main(["report", "tiny", "--seq-len", "8", "--no-timing", "--threads", str(before + 1)]) == 0
    assert torch.get_num_threads() == before
