"""compare's report for people: the files it leaves (compare.json, two plots, the calibrated profile) and its
text table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from profiler.checks.compare import STATISTICS, Point, largest_training_point
from profiler.hardware import HardwareProfile, save_profile
from profiler.render.plots import plot_roofline, plot_scatter
from profiler.workload import Workload

FILES = {"json": "compare.json", "scatter": "predicted_vs_measured.png", "roofline": "roofline.png",
         "profile": "calibrated_profile.json"}


def write_outputs(report: dict[str, Any], profile: HardwareProfile, points: list[Point], out: Path) -> dict[str, Any]:
    """`report` with its `files` added, written into `out` (created if needed) with predicted_vs_measured.png,
    roofline.png (of the largest training point) and the calibrated profile."""
    out.mkdir(parents=True, exist_ok=True)
    report = {**report, "files": {key: str(out / name) for key, name in FILES.items()}}
    save_profile(profile, out / FILES["profile"])
    (out / FILES["json"]).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    plot_scatter(report["rows"], out / FILES["scatter"])
    source, mode, batch, seq = largest_training_point(points)
    plot_roofline(source, Workload(mode, batch, seq, device=profile.device_type), profile, STATISTICS[report["statistic"]][1],
                  out / FILES["roofline"])
    return report


def render_table(report: dict[str, Any]) -> str:
    lines = [f"{'model':<8} {'mode':<8} {'B':>3} {'S':>5} {'measured ms':>12} {'predicted ms':>13} {'error':>8} "
             f"{'bound':<8} {'MFU':>6} {'mem err':>8}"]
    for r in report["rows"]:
        memory = f"{r['memory']['error']:+.1%}" if "memory" in r else "-"
        lines.append(f"{r['model']:<8} {r['mode']:<8} {r['batch']:>3} {r['seq_len']:>5} {r['measured_s'] * 1e3:>12.2f} "
                     f"{r['predicted_s'] * 1e3:>13.2f} {r['error']:>+8.1%} {r['bound']:<8} {r['mfu']:>6.1%} "
                     f"{memory:>8}")
    s = report["summary"]
    if any(r["mode"] == "decode" for r in report["rows"]):
        lines.append(f"decode: ms per generated token after a context of S, the mean over "
                     f"{report.get('new_tokens', '?')} steps (contexts S .. S + n - 1); prefill: a prompt of S tokens")
    lines.append(f"\n{s['points']} points ({report['statistic']}): median |error| {s['median_abs_error']:.1%}, "
                 f"max {s['max_abs_error']:.1%}")
    other = [name for name in STATISTICS if name != report["statistic"] and f"{name}_median_abs_error" in s]
    for name in other:
        lines.append(f"({name}: median |error| {s[f'{name}_median_abs_error']:.1%}, "
                     f"max {s[f'{name}_max_abs_error']:.1%})")
    if "memory_median_abs_error" in s:
        lines.append(f"peak memory (forward, train, decode rows): median |error| {s['memory_median_abs_error']:.1%}, "
                     f"max {s['memory_max_abs_error']:.1%}")
    if report.get("files"):
        lines.append("files: " + ", ".join(report["files"].values()))
    return "\n".join(lines)
