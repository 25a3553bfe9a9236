"""`python -m profiler simulate`: seed 000's simulated NE and QPS of one architecture after some training days.

`--format json` prints `SimulationResult.to_dict()` plus "seed" (a stable interface, see docs/simulator.md);
`--plot PNG` draws NE against training days; `--benchmark N` times `simulate_many` on N random architectures.
The simulation, the plot and the timing live in the `simulator` package; this module parses the flags and renders.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from profiler.commands.arguments import MAX_SEED, dumps, from_library, integer, number, output_file, require_finite
from simulator import DEFAULT_CONFIG, SimulationResult, bench, load_config, simulate

FORMATS = ("table", "json")
MAX_BENCHMARK = 10**6  # random architectures of one timing (~0.2 GB of packed widths and intermediates)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="simulated NE/QPS of an architecture (seed 000's formulas)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=parse_arch,
                        help="architecture as JSON: 1..5 sub-architectures of 1..5 widths in [64, 2048], "
                             "e.g. '[[64,64],[512]]'")
    parser.add_argument("--days", type=number(0), help="training days, a number >= 0 (required with --arch)")
    parser.add_argument("--noise", action="store_true", help="add the seed's training-dependent noise")
    parser.add_argument("--seed", type=integer(0, MAX_SEED),
                        help="integer >= 0 seeding the noise (default: fresh randomness)")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.add_argument("--config", metavar="FILE", type=parse_config,
                        help="JSON object of constants overriding DEFAULT_CONFIG")
    parser.add_argument("--plot", metavar="PNG", type=output_file,
                        help="write NE against training days for the reference networks "
                             "and --arch (needs matplotlib)")
    parser.add_argument("--benchmark", metavar="N", type=integer(1, MAX_BENCHMARK),
                        help="time simulate_many on N random architectures, and simulate")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = args.config or DEFAULT_CONFIG
    if args.benchmark is not None:
        figures = bench.benchmark(args.benchmark)
        print(dumps(figures) if args.format == "json" else render_benchmark(figures))
        return 0
    if args.arch is None and args.plot is None:
        raise ValueError("--arch is required (an architecture as JSON, e.g. '[[64,64],[512]]'), "
                         "unless --plot or --benchmark")
    if args.seed is not None and not args.noise:
        raise ValueError("--seed seeds the noise: pass --noise with it (without noise the result is deterministic)")
    architecture, days, seed = args.arch, args.days, args.seed
    if architecture is not None:
        if days is None:
            raise ValueError("--days is required with --arch (training days, a number >= 0)")
        result = simulate(architecture, days, noise=args.noise, seed=seed, config=config)
        data = require_finite({**result.to_dict(), "seed": seed})
        print(dumps(data) if args.format == "json" else render_table(result, seed))
    if args.plot is not None:
        from simulator.plot import plot_ne_vs_days  # matplotlib loads only when a plot is asked for

        plot_ne_vs_days(args.plot, architecture, days, config)
    return 0


def parse_arch(text: str) -> list[Any]:
    """argparse type for --arch: a JSON list; `simulate` checks its entries against the config's ranges."""
    expected = "expected a list of sub-architectures such as '[[64,64],[512]]'"
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        detail = f"{err.msg} at character {err.pos}" if isinstance(err, json.JSONDecodeError) else "nested too deep"
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is malformed JSON ({detail}); {expected}") from err
    if not isinstance(value, list):
        kind = {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is {kind}, not a JSON list; {expected}")
    return value


parse_config = from_library(load_config, "config")  # --config FILE -> SimulatorConfig


def render_table(result: SimulationResult, seed: int | None) -> str:
    def clipped(flag: bool) -> str:
        return ", clipped to [0, 1]" if flag else ""

    noise = (f"yes (seed {seed})" if seed is not None else "yes (unseeded)") if result.noise else "no"
    rows = [
        ("architecture", json.dumps([list(sub) for sub in result.architecture])),
        ("training days", f"{result.training_days:g} (training sufficiency t = {result.training_sufficiency:.4f})"),
        ("params per sub-arch", " · ".join(f"{p:,}" for p in result.params) + "  (the seed's \"flops\")"),
        ("complexity_ne", f"{result.complexity_ne:.6f} scaled (raw {result.complexity_ne_raw:.6f}"
                          f"{clipped(result.complexity_ne_clipped)})"),
        ("complexity_qps", f"{result.complexity_qps:.6f} scaled (raw {result.complexity_qps_raw:.6f}"
                           f"{clipped(result.complexity_qps_clipped)})"),
        ("noise", f"{noise}; std {result.noise_scale:.6g} for NE, {result.noise_scale:.6g} x QPS for QPS"),
        ("NE", f"{result.ne:.6f} (lower is better; noiseless {result.ne_without_noise:.6f})"),
        ("QPS", f"{result.qps:,.1f} queries/s (noiseless {result.qps_without_noise:,.1f})"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def render_benchmark(figures: dict[str, Any]) -> str:
    n = figures["architectures"]
    return "\n".join([
        f"simulate_many, {n:,} random architectures as lists: {figures['simulate_many_lists_s']:.3f} s "
        f"(of which packing {figures['pack_s']:.3f} s)",
        f"simulate_many, the same pre-packed:               {figures['simulate_many_packed_s']:.3f} s",
        f"simulate, one architecture:                       {figures['simulate_per_call_us']:.0f} us per call "
        f"(mean of {figures['simulate_calls_timed']:,} calls)",
        f"(best of {figures['repeats']} runs; noise on for simulate_many; {figures['training_days']:g} days)",
    ])
