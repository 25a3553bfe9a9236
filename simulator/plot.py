"""A PNG of NE against training days for the three reference networks and, optionally, one more architecture."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from simulator.config import DEFAULT_CONFIG, SimulatorConfig
from simulator.core import simulate_many

DAYS_BEYOND = 1.5  # the x axis runs to 1.5 x MAX_TRAINING_DAYS, to show the plateau after it
POINTS = 241


def ne_curves(architectures: dict[str, Any],
              config: SimulatorConfig = DEFAULT_CONFIG) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Days from 0 to DAYS_BEYOND x MAX_TRAINING_DAYS, and each named architecture's noiseless NE on those days."""
    days = np.linspace(0.0, DAYS_BEYOND * config.MAX_TRAINING_DAYS, POINTS)
    return days, {name: simulate_many([arch] * POINTS, days, config=config).ne for name, arch in architectures.items()}


def plot_ne_vs_days(path: str | os.PathLike, architecture: Any = None, days: float | None = None,
                    config: SimulatorConfig = DEFAULT_CONFIG) -> None:
    """Write the PNG to `path`: SMALL/MEDIUM/LARGE_NETWORK and `architecture` (marked at `days` when given)."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global figure state, Agg renders the PNG
    except ImportError as err:
        raise ValueError("--plot needs matplotlib (pip install matplotlib)") from err
    named = {"SMALL_NETWORK": config.SMALL_NETWORK, "MEDIUM_NETWORK": config.MEDIUM_NETWORK,
             "LARGE_NETWORK": config.LARGE_NETWORK}
    if architecture is not None:
        named["architecture"] = architecture
    x, curves = ne_curves(named, config)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, ne in curves.items():
        ax.plot(x, ne, label=name if name != "architecture" else f"{list(map(list, architecture))}",
                linewidth=2.5 if name == "architecture" else 1.5, linestyle="-" if name == "architecture" else "--")
    if architecture is not None and days is not None:
        ax.plot([days], simulate_many([architecture], days, config=config).ne, "ko", label=f"{days:g} days")
    ax.axvline(config.MAX_TRAINING_DAYS, color="grey", linewidth=0.8)
    ax.annotate("MAX_TRAINING_DAYS", (config.MAX_TRAINING_DAYS, ax.get_ylim()[1]), ha="left", va="top",
                fontsize=8, color="grey")
    ax.set_xlabel("training days")
    ax.set_ylabel("NE (normalized entropy, lower is better), noiseless")
    ax.set_title("Simulated NE against training days (seed 000's formulas)")
    ax.legend(fontsize=8)
    try:
        fig.savefig(path, format="png", dpi=120)
    except OSError as err:
        raise ValueError(f"--plot {os.fspath(path)!r}: cannot be written ({err.strerror})") from err
