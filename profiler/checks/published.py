"""The shipped configs' analytic parameter counts against the counts their authors published
(`python -m profiler analyze --validate`); each figure's source is in published.json beside the configs."""

from __future__ import annotations

from typing import Any

from profiler.analysis import params_section
from profiler.formulas.params import count_params
from profiler.source import MODELS_DIR, PUBLISHED_FILE, read_json, resolve


def validate_published() -> list[dict[str, Any]]:
    """One row per published figure in profiler/data/models/published.json, with the analytic count beside it;
    `match` when the analytic count rounds to the published figure at its stated rounding."""
    published = read_json(MODELS_DIR / PUBLISHED_FILE)
    rows = []
    for name, checks in published.items():
        if name.startswith("_"):
            continue
        arch = resolve(name).arch
        section = params_section(arch, count_params(arch))
        for check in checks:
            analytic, rounding = section[check["quantity"]], check["rounding"]
            rows.append({"model": name, "quantity": check["quantity"], "published": check["value"],
                         "rounding": rounding, "analytic": analytic,
                         "match": round(analytic / rounding) * rounding == check["value"],
                         "source": check["source"]})
    return rows
