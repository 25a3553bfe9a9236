"""The main job's report (`profiler.checks.report`) as Markdown: analytic numbers, their validation against counted
FLOPs, and measured against predicted time."""

from __future__ import annotations

from typing import Any

from profiler.render.tables import human, render_rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Rows of cells under `header` as Markdown table lines."""
    return render_rows([dict(zip(header, row)) for row in rows], "markdown").splitlines()


def render_markdown(result: dict[str, Any]) -> str:
    """The report document (`profiler.checks.report.report`) as one Markdown page."""
    analysis = result["analysis"]
    w, params, flops, memory = analysis["workload"], analysis["params"], analysis["flops"], analysis["memory"]
    lines = [f"# {result['model']} ({analysis['model_type']})", "",
             f"Batch {w['batch']} × {w['seq_len']} tokens, {w['dtype']}, AdamW. FLOPs count 2 per multiply-add "
             "(matrix products); attention is given dense (every S×S pair) and causal (unmasked pairs only).", ""]

    lines += ["## Parameters", ""]
    lines += _table(["quantity", "exact", "human"],
                    [[key, f"{params[key]:,}", human(params[key], "parameters")] for key in
                     ("total", "active", "embedding", "non_embedding", "active_non_embedding")])

    lines += ["", "## FLOPs per step", ""]
    rows = [[name, f"{flops[key]:,}", f"{flops[key + '_causal']:,}"] for name, key in
            (("forward", "forward"), ("backward", "backward"), ("training step", "train_step"))]
    lines += _table(["pass", "dense", "causal"], rows)
    lines += ["", f"6ND = {flops['six_nd']:,}; prefill {flops['prefill']:,}; one decoded token at this context "
                  f"{flops['decode_per_token']:,}."]

    lines += ["", "## Memory", ""]
    lines += _table(["quantity", "bytes", "human"],
                    [[key, f"{value:,}", human(value, "bytes")] for key, value in memory.items()
                     if value and not isinstance(value, dict)])

    check = result["validation"]
    verdict = "passed" if check["passed"] else "FAILED"
    lines += ["", f"## Validation against counted FLOPs: {verdict}, max relative error {check['max_rel_error']:.2e}",
              "", f"Counted on the {check['device']} device; {check['convention']}; tolerance {check['tolerance']:g}."]
    lines += [f"Note: {note}" for note in check["notes"]]
    lines += [""] + _table(
        ["quantity", "counter", "analytic", "counted", "status"],
        [[row["quantity"], row["counter"], f"{row['analytic']:,}",
          "-" if row["counted"] is None else f"{row['counted']:,}", row["status"]]
         for row in check["rows"] if row["component"] == "total"])

    if "timing" in result:
        lines += ["", *_timing_markdown(result["timing"])]
    lines += ["", "## Assumptions", ""] + [f"- {item}" for item in analysis["assumptions"]]
    return "\n".join(lines)


def _timing_markdown(timing: dict[str, Any]) -> list[str]:
    env = timing["environment"]
    device = env.get("device", "?")
    device = device.get("name", "?") if isinstance(device, dict) else device
    lines = ["## Time on this device: measured and predicted", "",
             f"Device {device}, {env.get('threads', '?')} thread(s), {env.get('clock', '?')} clock, torch "
             f"{env.get('torch', '?')}. Calibrated in this run; measured = {timing['statistic']} of the repeats; "
             "predicted = the per-op roofline of `profiler predict` (docs/estimating.md).", ""]
    rows = []
    for r in timing["rows"]:
        memory = f"{r['memory']['error']:+.1%}" if "memory" in r else "-"
        rows.append([r["mode"], f"{r['measured_s'] * 1e3:,.2f}", f"{r['predicted_s'] * 1e3:,.2f}", f"{r['error']:+.1%}",
                     r["bound"], f"{r['mfu']:.1%}", memory])
    lines += _table(["step", "measured ms", "predicted ms", "error", "bound", "MFU", "peak memory error"], rows)
    lines += ["", "Error = (predicted − measured) ÷ measured. MFU = matmul FLOPs (causal) ÷ (time × the fastest matmul "
                  "rate calibrated here). Peak memory: the predicted peak of live tensors (training: the largest phase "
                  "of the memory timeline; forward: weights and every logit) against the measured one (tensor "
                  "storages on the CPU, the caching allocator's max_memory_allocated on CUDA)."]
    if any(r["mode"] == "decode" for r in timing["rows"]):
        steps = timing.get("new_tokens", "?")
        lines += ["", "Prefill: the prompt's forward in `generate` (logits of the last position only). Decode: ms per "
                      f"generated token, (generate − prefill) ÷ {steps} steps, predicted as the mean over the "
                      "contexts those steps attend."]
    files = timing.get("files") or {}
    if files:
        lines += ["", "Files: " + ", ".join(f"{name} `{path}`" for name, path in files.items())]
    return lines
