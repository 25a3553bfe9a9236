"""Plain data rendered for people: aligned text tables, Markdown, CSV and JSON, and numbers on a human scale.

Every renderer takes lists of same-keyed dicts (or numbers) and returns a string; nothing here prints.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

FORMATS = ("table", "markdown", "csv", "json")


def render_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    """A list of same-keyed dicts as an aligned text table, a Markdown table, CSV or JSON."""
    if fmt == "json":
        return json.dumps(rows, indent=2, allow_nan=False)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    header = list(rows[0])
    cells = [[str(row[key]) for key in header] for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells])
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def human(value: float, unit: str) -> str:
    """A number on a human scale: GiB for bytes, k/M/G/T/P for counts and FLOPs."""
    if unit == "bytes":
        return f"{value / 2**30:,.3f} GiB"
    if unit == "ratio" or abs(value) < 1000:
        return f"{value:,.4g}"
    exponent = min(int(math.log10(abs(value)) // 3), 5)
    return f"{value / 10 ** (3 * exponent):,.3f} {' kMGTP'[exponent]}{'FLOP' if unit == 'FLOPs' else ''}".rstrip()


def exact(value: float) -> str:
    """An integer with thousands separators, or a float to 6 significant digits."""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of every leaf of nested dicts; a list of dicts is keyed by each row's first field
    (`rows[seq_len=512].six_n`)."""
    if isinstance(data, dict):
        return [item for key, value in data.items() for item in flatten(value, f"{prefix}.{key}" if prefix else key)]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        key = next(iter(data[0]))
        return [item for row in data for item in flatten(row, f"{prefix}[{key}={row[key]}]")]
    return [(prefix, data)]
