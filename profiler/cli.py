"""`python -m profiler <command>`: one argparse front end; each command lives in its own `profiler.commands` module.

A command module exposes `register(subparsers)`, which adds its parser and sets `func=run` where
`run(args) -> int` returns the exit status. Bad input raises ValueError, which becomes one line on stderr and
exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

# Modules that define a command, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = tuple(f"profiler.commands.{name}" for name in (
    "analyze", "validate", "calibrate", "measure", "predict", "compare", "estimate", "fit", "report", "simulate",
    "validate_timings",
))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="profiler", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"profiler {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
