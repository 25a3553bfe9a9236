"""`python -m profiler validate-timings`: predictions against published single-device PyTorch timings.

The shipped records (profiler/data/timings/published.json, each with its source) or any file of the same form;
`profiler.checks.timings` says how each record is predicted."""

from __future__ import annotations

import argparse

from profiler.checks.timings import TIMINGS_FILE, validate_timings
from profiler.commands.arguments import dumps
from profiler.hardware import ESTIMATES
from profiler.render.timings import render_timings

FORMATS = ("table", "markdown", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validate-timings", help="predicted vs published end-to-end timings",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--records", default=str(TIMINGS_FILE),
                        help="a timings JSON file (default: the shipped published.json)")
    parser.add_argument("--estimate", default="likely", choices=list(ESTIMATES),
                        help="which end of each profile's spread (default likely = median)")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prints the comparison; exit status 0 when every record not marked doubtful is within tolerance, else 1."""
    result = validate_timings(args.records, args.estimate)
    print(dumps(result) if args.format == "json" else render_timings(result, args.format))
    return 0 if result["passed"] else 1
