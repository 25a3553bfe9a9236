"""The `analyze` document rendered: titled tables (text or Markdown, with the assumptions last) or a flat CSV of
every number with its unit."""

from __future__ import annotations

import json
from typing import Any

from profiler.formulas import flops as F
from profiler.render.tables import exact, flatten, human, render_rows

FORMATS = ("table", "json", "markdown", "csv")
UNITS_BY_KEY = {"budget_usd": "USD", "usd_per_device_hour": "USD/h", "peak_flops_per_s": "FLOP/s",
                "device_hours": "h", "seq_len": "tokens", "context": "tokens", "tokens": "tokens",
                "batch": "sequences", "micro_batch": "sequences", "bits_per_param": "bits", "layout": "",
                "new_tokens": "tokens", "prompt": "tokens"}


def _unit(path: str) -> str:
    """The unit of a flattened JSON key, for the CSV's unit column."""
    top, last = path.split(".")[0].split("[")[0], path.rsplit(".", 1)[-1]
    if last in UNITS_BY_KEY:
        return UNITS_BY_KEY[last]
    if top == "memory":
        return "bytes"
    if top == "params" or last == "params":
        return "params"
    if "_over_" in last:
        return "ratio"
    return "FLOPs" if top in ("flops", "six_n_vs_detailed") or last == "flops" else ""


def sections(report: dict[str, Any]) -> list[tuple[str, list[dict[str, str]]]]:
    """The report as titled tables of strings (for the table and markdown formats)."""
    out: list[tuple[str, list[dict[str, str]]]] = []
    if "params" in report:
        arch, work = report["architecture"], report["workload"]
        out.append((f"{report['model']} ({report['model_type']})", [
            {"field": key, "value": ", ".join(map(str, v)) if isinstance(v, list) else str(v)}
            for key, v in {**arch, **work}.items()]))
        params = report["params"]
        out.append(("Parameters", [{"quantity": key, "exact": exact(params[key]), "human": human(params[key], "")}
                                   for key, value in params.items() if isinstance(value, int)]))
        out.append(("Parameters by component", [
            {"component": name, "total": exact(total), "active": exact(params["active_components"][name])}
            for name, total in params["components"].items()]))
        flops, parts = report["flops"], report["flops"]["components"]
        out.append(("FLOPs by component (2 per multiply-add)", [
            {"component": name, **{kind: human(parts[kind][name], "FLOPs") for kind in parts}} for name in F.COMPONENTS]))
        out.append(("FLOPs", [{"quantity": key, "exact": exact(value), "human": human(value, "FLOPs")}
                              for key, value in flops.items() if key != "components"]))
        out.append(("Training FLOPs per token: detailed vs 6N", [
            {"seq_len": str(row["seq_len"]), "6N": human(row["six_n"], "FLOPs"), "PaLM": human(row["palm"], "FLOPs"),
             "dense": human(row["detailed_dense"], "FLOPs"), "causal": human(row["detailed_causal"], "FLOPs"),
             "dense/6N": f"{row['dense_over_six_n']:.3f}", "causal/6N": f"{row['causal_over_six_n']:.3f}"}
            for row in report["six_n_vs_detailed"]]))
        memory = report["memory"]
        out.append(("Memory", [{"quantity": key, "bytes": exact(value), "human": human(value, "bytes")}
                               for key, value in memory.items() if not isinstance(value, dict)]))
        for key, title in (("timeline", "Memory of a training step, by phase (the peak is the largest)"),
                           ("generate_timeline", f"Memory of generation, by phase (a prompt of "
                                                 f"{report['workload']['prompt']:,} tokens, then "
                                                 f"{report['workload']['new_tokens']:,} new ones)")):
            out.append((title, [{"phase": phase, "bytes": exact(value), "human": human(value, "bytes")}
                                for phase, value in memory[key].items()]))
        out.append(("Weights in other formats (inference: the layers' matrices in the format, the rest in 16 bits)", [
            {"format": name, "bytes": exact(row["bytes"]), "human": human(row["bytes"], "bytes"),
             "bits/param": f"{row['bits_per_param']:.3f}", "layout": row["layout"]}
            for name, row in memory["weights_by_format"].items()]))
    if "validation" in report:
        check = report["validation"]
        notes = "".join(f"; note: {note}" for note in check["notes"])
        out.append((f"Validation against counted FLOPs ({check['device']}; {check['convention']}{notes}): max "
                    f"relative error {check['max_rel_error']:.2e}, {'passed' if check['passed'] else 'FAILED'}", [
            {"quantity": row["quantity"], "component": row["component"], "counter": row["counter"],
             "analytic": exact(row["analytic"]), "counted": "-" if row["counted"] is None else exact(row["counted"]),
             "status": row["status"]} for row in check["rows"]]))
    if "training_budget" in report:
        budget = report["training_budget"]
        rows = [{"quantity": path, "value": exact(value)} for path, value in flatten(budget)
                if isinstance(value, (int, float)) and not isinstance(value, bool)]
        out.append(("Compute-optimal size for the budget (Hoffmann et al. 2022)", rows))
    return out


def render(report: dict[str, Any], fmt: str) -> str:
    """The analyze document in `fmt` (one of FORMATS)."""
    if fmt == "json":
        return json.dumps(report, indent=2, allow_nan=False)
    if fmt == "csv":
        rows = [{"quantity": path, "value": value, "unit": _unit(path)} for path, value in flatten(report)
                if not isinstance(value, list)]
        return render_rows(rows, "csv")
    notes = report.get("assumptions", []) + report.get("training_budget", {}).get("assumptions", [])
    blocks = [(f"## {title}" if fmt == "markdown" else title) + "\n\n" + render_rows(rows, fmt)
              for title, rows in sections(report)]
    bullet = "- " if fmt == "markdown" else "* "
    blocks.append(("## Assumptions" if fmt == "markdown" else "Assumptions") + "\n\n"
                  + "\n".join(bullet + note for note in notes))
    return "\n\n".join(blocks)
