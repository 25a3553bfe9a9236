"""`python -m profiler report`: the main job joins analyze, validate and compare."""

from __future__ import annotations

import json

import pytest

from profiler import compare
from profiler.analyze import analyze
from profiler.arch import load_arch
from profiler.cli import main
from profiler.report import render_markdown, report

pytest.importorskip("transformers")


def test_report_without_timing_joins_analysis_and_validation(capsys):
    assert main(["report", "tiny", "--seq-len", "16", "--no-timing", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"model", "analysis", "validation"}
    assert result["analysis"] == json.loads(json.dumps(analyze(load_arch("tiny"), batch=1, seq_len=16,
                                                               dtype="float32")))
    assert result["validation"]["passed"] and result["validation"]["max_rel_error"] == 0


def test_timing_section_comes_from_compare(monkeypatch, tmp_path):
    calls = []

    def fake_comparison(points, out, device, threads, repeats):
        calls.append((points, out, device, threads, repeats))
        rows = [{"mode": mode, "measured_s": 0.010, "predicted_s": 0.011, "error": 0.1, "bound": "compute",
                 "mfu": 0.25} for _, mode, _, _ in points]
        return {"statistic": "min", "environment": {"device": "cpu", "threads": 1, "clock": "cpu", "torch": "x"},
                "rows": rows, "files": {"json": str(out / "compare.json")}}

    monkeypatch.setattr(compare, "calibrated_comparison", fake_comparison)
    result = report("tiny", batch=2, seq_len=8, device="cpu", threads=1, repeats=3, output_dir=tmp_path)
    assert calls == [([("tiny", "forward", 2, 8), ("tiny", "train", 2, 8)], tmp_path, "cpu", 1, 3)]
    text = render_markdown(result)
    assert "## Time on this device: measured and predicted" in text
    assert "| train | 10.00 | 11.00 | +10.0% | compute | 25.0% | - |" in text
    assert "## Validation against counted FLOPs: passed" in text


def test_report_writes_its_files(tmp_path, capsys):
    assert main(["report", "tiny", "--seq-len", "8", "--no-timing", "--output-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "report.md").read_text() == printed
    assert json.loads((tmp_path / "report.json").read_text())["model"] == "tiny"


@pytest.mark.parametrize("argv", [["report", "tiny", "--seq-len", "0", "--no-timing"],
                                  ["report", "no_such_model", "--no-timing"]])
def test_bad_input_is_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("profiler report: error:") and "\n" not in err
