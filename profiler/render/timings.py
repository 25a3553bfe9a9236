"""`validate-timings` results for people: predicted against published time per record, and the error summary."""

from __future__ import annotations

from typing import Any

from profiler.render.tables import render_rows


def timings_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """One display row per record: milliseconds, signed error, and a mark for doubtful records."""
    rows = []
    for r in result["rows"]:
        shape = f"b{r['batch']} s{r['seq_len']}" + (f" x{r['micro_batches']}" if r["micro_batches"] > 1 else "")
        rows.append({"record": r["id"], "hardware": r["hardware"], "mode": f"{r['mode']} ({r['scope']})",
                     "shape": shape, "dtype": r["dtype"], "attention": r["attention_kernel"],
                     "published ms": f"{r['published_s'] * 1e3:,.2f}", "predicted ms": f"{r['predicted_s'] * 1e3:,.2f}",
                     "error": f"{r['error']:+.1%}", "doubtful": "yes" if r["doubtful"] else ""})
    return rows


def _summary_line(label: str, s: dict[str, Any], tolerance: float) -> str:
    if not s["records"]:
        return f"{label}: no records"
    return (f"{label}: {s['records']} records, |error| median {s['median_abs_error']:.1%}, max "
            f"{s['max_abs_error']:.1%}, {s['within_tolerance']} within ±{tolerance:.0%}")


def render_timings(result: dict[str, Any], fmt: str = "table") -> str:
    """The per-record table (any `render_rows` format) followed by the two summary lines."""
    table = render_rows(timings_rows(result), fmt)
    tolerance = result["tolerance"]
    return "\n".join([f"published timings against predictions ({result['estimate']} estimate)", "", table, "",
                      _summary_line("all", result["summary"], tolerance),
                      _summary_line("not doubtful", result["summary_not_doubtful"], tolerance)])
