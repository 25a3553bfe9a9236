"""The per-category comparison of `python -m profiler ops` (`profiler.checks.ops`) as a text table."""

from __future__ import annotations

from typing import Any


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.3f}"


def render_ops_table(result: dict[str, Any]) -> str:
    """Header (model, workload, device, clock), one row per category — predicted and measured ms per step, error,
    each side's share, the slowest ops on either side (as many as the comparison kept) — then the totals and the
    profiler's own overhead."""
    w, env, totals = result["workload"], result["environment"], result["totals"]
    lines = [f"{result['model']}: {w['mode']}, batch {w['batch']} x seq_len {w['seq_len']}, {w['dtype']}; predicted "
             f"on {result['hardware']} ({result['estimate']}), measured on {env['device']['name']} with "
             f"{env['threads']} thread(s), {env['clock']} clock, torch.profiler {env['measured_time']}, mean of "
             f"{env['repeats']} step(s)",
             "",
             f"  {'category':<12} {'pred ms':>10} {'meas ms':>10} {'error':>8} {'pred %':>7} {'meas %':>7}  "
             f"slowest predicted / measured ops"]
    for row in result["categories"]:
        error = "-" if row["error"] is None else f"{row['error']:+.1%}"
        predicted = ", ".join(op["name"] for op in row["predicted_ops"]) or "-"
        measured = ", ".join(op["name"] for op in row["measured_ops"]) or "-"
        lines.append(f"  {row['category']:<12} {_ms(row['predicted_s']):>10} {_ms(row['measured_s']):>10} "
                     f"{error:>8} {row['predicted_share']:>7.1%} {row['measured_share']:>7.1%}  "
                     f"{predicted} / {measured}")
    lines += ["",
              f"  predicted step {_ms(totals['predicted_s'])} ms; profiled ops {_ms(totals['profiled_ops_s'])} ms "
              f"(error {totals['error_vs_profiled_ops']:+.1%}); profiled step {_ms(totals['profiled_step_s'])} ms",
              f"  unprofiled step: mean {_ms(totals['unprofiled_mean_s'])} ms, min {_ms(totals['unprofiled_min_s'])} "
              f"ms (prediction {totals['error_vs_unprofiled']:+.1%} against the mean); the profiler's overhead: "
              f"profiled / unprofiled step - 1 = {totals['overhead']:+.1%}"]
    return "\n".join(lines)
