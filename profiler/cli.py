"""`python -m profiler <command>`: one argparse front end; each command lives in its own `profiler.commands` module.

A command module exposes `register(subparsers)`, which adds its parser and sets `func=run` where
`run(args) -> int` returns the exit status. Arguments are parsed and checked by `profiler.commands.arguments`;
a bad one, or a ValueError from library code, or an OSError reading or writing a file, becomes one line on stderr
(`profiler COMMAND: error: ...`) and exit status 2 — never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence

from profiler.commands.arguments import ArgumentParser, print_error

# Modules that define a command, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = tuple(f"profiler.commands.{name}" for name in (
    "analyze", "validate", "calibrate", "measure", "predict", "compare", "estimate", "fit", "report", "simulate",
    "validate_timings", "ops",
))


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="profiler", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0), or a bad argument whose one-line error argparse has printed (2)
        return 0 if done.code is None else int(done.code)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print_error(args.command, str(err))
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    except OSError as err:  # a file that cannot be read or written after all (disk full, removed meanwhile)
        print_error(args.command, f"{err.filename or ''}: {err.strerror or err}".lstrip(": "))
        return 2
