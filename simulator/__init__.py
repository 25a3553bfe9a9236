"""Seed 000's simulated NE/QPS performance of neural architectures, for architecture-search experiments.

`simulate(architecture, training_days)` for one architecture, `simulate_many` for many at once (numpy);
constants in `DEFAULT_CONFIG`, overridable with `dataclasses.replace` or `load_config(path)`. See docs/simulator.md.
"""

from simulator.architecture import pack
from simulator.config import DEFAULT_CONFIG, SimulatorConfig, config_from_dict, load_config
from simulator.core import SimulationBatch, SimulationResult, simulate, simulate_many

__all__ = ["DEFAULT_CONFIG", "SimulationBatch", "SimulationResult", "SimulatorConfig", "config_from_dict",
           "load_config", "pack", "simulate", "simulate_many"]
