"""The command line's one validation layer: every command parses its numbers, models, hardware profiles, input
files and output paths with the functions here, so a bad value of any kind ends the same way — one line on
stderr naming the flag and what it allows, exit status 2 — and never a traceback or a silently wrong result.

* Numbers (`integer`, `integers`, `number`): argparse `type=` functions. Integers are whole and within bounds
  (`1e6` is read as 1000000; `1.5`, `10**400`, `nan`, `inf` are refused); reals are finite and within bounds.
* Inputs (`model`, `models`, `hardware`, `hardware_name`, `byte_size`, `device_name`, `choices`): a library reader
  whose ValueError becomes argparse's error for that flag (`from_library`). JSON files are read by
  `profiler.source.read_json`: UTF-8, strict JSON, the path named.
* Outputs (`output_file`, `require_fresh_directory`): checked before any work starts — the directory exists and
  is writable; an output directory holds one run (an existing non-empty one needs `--overwrite`).
* Results (`require_finite`, `dumps`): what a command prints or writes never holds NaN or an infinity.
* Model limits (`require_positions`, `positions_or_default`, `prompt_or_default`): no length, and no prompt plus
  its generated tokens, past the model's `max_position_embeddings`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from complexity.inputs import number_range, require_int
from profiler.arch import ArchSpec
from profiler.fit import parse_bytes
from profiler.hardware import HardwareProfile, load_profile, profile_from_dict
from profiler.source import ModelSource, read_json, resolve
from profiler.workload import MAX_TOKENS

MAX_THREADS = 1024  # torch intra-op threads: more than any machine's cores, so larger values are typos
MAX_SEED = 2**63 - 1  # torch.manual_seed takes a signed 64-bit seed
MAX_COUNT = 2**53  # sequences, tokens, parameters: floats (seconds, FLOPs, 1e6 literals) hold every count exactly
MAX_REPEATS = 10**6  # timed or warm-up calls: more than any benchmark runs, so larger values are typos
_SHOWN = 40  # characters of a bad value quoted in a message


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, its errors one line (`profiler CMD: error: ...`, exit 2) without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def one_line(message: str) -> str:
    """`message` with its line breaks folded into spaces: every error is one line on stderr."""
    return " ".join(str(message).split())


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


# ------------------------------------------------------------------------------------------------- numbers
def _to_int(text: str) -> int | None:
    """The integer `text` spells (`12`, `1_000`, or a float literal naming a whole number, `1e6`), else None."""
    try:
        return int(text)
    except ValueError:  # not an integer literal, or more digits than int() reads (sys.get_int_max_str_digits)
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isfinite(value) and value.is_integer() and abs(value) <= MAX_COUNT:
        return int(value)
    return None


def _int_allowed(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an integer in [{low}, {high}]"
    if low is not None:
        return f"an integer >= {low}"
    return "an integer" + (f" <= {high}" if high is not None else "")


def _int_in_range(value: int | None, low: int | None, high: int | None) -> bool:
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


def integer(low: int | None = 1, high: int | None = MAX_TOKENS) -> Callable[[str], int]:
    """argparse type: an integer in [low, high] (either end None: unbounded)."""
    def parse(text: str) -> int:
        value = _to_int(text)
        if not _int_in_range(value, low, high):
            raise argparse.ArgumentTypeError(f"{_shown(text)} must be {_int_allowed(low, high)}")
        return value

    parse.__name__ = "integer"
    return parse


def integers(low: int | None = 1, high: int | None = MAX_TOKENS) -> Callable[[str], list[int]]:
    """argparse type: a non-empty comma-separated list of integers, each in [low, high]."""
    def parse(text: str) -> list[int]:
        values = [_to_int(part) for part in text.split(",")]
        if not all(_int_in_range(v, low, high) for v in values):
            raise argparse.ArgumentTypeError(f"{_shown(text)} must be comma-separated integers, each "
                                             f"{_int_allowed(low, high).removeprefix('an integer ')}")
        return values

    parse.__name__ = "integers"
    return parse


def number(low: float = -math.inf, high: float = math.inf, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """argparse type: a finite real number within the bounds (open or closed at each end)."""
    allowed = number_range(low, high, low_inclusive=not low_open, high_inclusive=not high_open)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (math.isfinite(value) and above and below):
            raise argparse.ArgumentTypeError(f"{_shown(text)} must be {allowed}")
        return value

    parse.__name__ = "number"
    return parse


def choices(allowed: Iterable[str]) -> Callable[[str], list[str]]:
    """argparse type: a non-empty comma-separated list, each item one of `allowed`."""
    allowed = tuple(allowed)

    def parse(text: str) -> list[str]:
        items = text.split(",")
        if not all(item in allowed for item in items):
            raise argparse.ArgumentTypeError(f"{_shown(text)} must be comma-separated names, each one of "
                                             f"{', '.join(allowed)}")
        return items

    parse.__name__ = "choices"
    return parse


# -------------------------------------------------------------------------------------------------- inputs
def from_library(read: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """argparse type: `read(text)`, its ValueError (which names the value and the range) as this flag's error."""
    def parse(text: str) -> Any:
        try:
            return read(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(one_line(str(err))) from err

    parse.__name__ = name
    return parse


def _read_profile(text: str) -> HardwareProfile:
    """A hardware profile JSON file (read strictly, the path named) or a shipped profile's name."""
    path = Path(text)
    if path.is_file():
        return profile_from_dict(read_json(path), where=path.name)
    return load_profile(text)


def _profile_name(text: str) -> str:
    _read_profile(text)
    return text


def _resolve_all(text: str) -> list[ModelSource]:
    return [resolve(name) for name in text.split(",")]


model = from_library(resolve, "model")  # MODEL -> ModelSource: a zoo size, a shipped config or a config.json
models = from_library(_resolve_all, "models")  # comma-separated MODELs
hardware = from_library(_read_profile, "hardware")  # NAME or JSON path -> HardwareProfile
hardware_name = from_library(_profile_name, "hardware_name")  # the same, checked, kept as given (for load_profile)
byte_size = from_library(parse_bytes, "byte_size")  # "48GiB", "80GB" -> bytes


def device_name(text: str) -> str:
    """argparse type: auto, cpu, mps, cuda or cuda:N (whether it exists here is checked when it is opened)."""
    kind, _, index = text.partition(":")
    if kind not in ("auto", "cpu", "mps", "cuda") or (index and (kind != "cuda" or not index.isdigit())):
        raise argparse.ArgumentTypeError(f"{_shown(text)} must be auto, cpu, cuda, cuda:N or mps")
    return text


# ------------------------------------------------------------------------------------------------- outputs
def _writable_directory(directory: Path) -> str | None:
    """Why files cannot be created in `directory`, or None when they can."""
    if not directory.exists():
        return f"directory {str(directory)!r} does not exist"
    if not directory.is_dir():
        return f"{str(directory)!r} is not a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"directory {str(directory)!r} is not writable"
    return None


def output_file(text: str) -> Path:
    """argparse type: a file path that can be written now — its directory exists and is writable, and the path
    is not a directory (checked at parsing, before any work)."""
    path = Path(text)
    if not text.strip():
        problem = "an empty path is not a file name"
    elif text.endswith(os.sep) or path.is_dir():
        problem = f"{_shown(text)} is a directory, not a file name"
    elif path.exists() and not os.access(path, os.W_OK):
        problem = f"{_shown(text)} exists and is not writable"
    else:
        problem = _writable_directory(path.parent)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


def require_fresh_directory(flag: str, path: Path, overwrite: bool) -> Path:
    """`path` when a run may write its files there: a new directory under a writable one (created later, with its
    parents), an empty directory, or — with `overwrite` — any writable directory. One run per output directory."""
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{flag} {str(path)!r} is a file; it must be a directory, new or empty")
        if any(path.iterdir()) and not overwrite:
            raise ValueError(f"{flag} {str(path)!r} is not empty (it holds another run); choose a new directory or "
                             f"pass --overwrite")
        problem = _writable_directory(path)
    else:
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        problem = _writable_directory(ancestor)
    if problem:
        raise ValueError(f"{flag} {str(path)!r}: {problem}")
    return path


# ------------------------------------------------------------------------------------------- model limits
def require_positions(arch: ArchSpec, tokens: int, what: str) -> None:
    """No sequence longer than the model has positions: `tokens` (named `what`, e.g. "--seq-len") at most
    `max_position_embeddings` (its RoPE table or learned position table ends there)."""
    limit = require_int(f"{arch.name}'s max_position_embeddings", arch.max_position_embeddings, 1)
    if tokens > limit:
        raise ValueError(f"{what}={tokens:,} is past {arch.name}'s positions: it must be <= {limit:,} "
                         f"(max_position_embeddings)")


def positions_or_default(arch: ArchSpec, tokens: int | None, default: int, what: str) -> int:
    """`tokens` once `require_positions` accepts it; when not given, `default` capped at the model's positions (a
    default that a shorter model cannot take is no error of the user's)."""
    if tokens is None:
        return min(default, arch.max_position_embeddings)
    require_positions(arch, tokens, what)
    return tokens


def prompt_or_default(arch: ArchSpec, prompt: int | None, default: int, new_tokens: int, what: str,
                      new_what: str = "--new-tokens") -> int:
    """The prompt (named `what`) of a generation of `new_tokens` tokens (named `new_what`), so that prompt + new
    tokens fit the model's positions (the zoo's `generate` refuses more): `prompt` once `require_positions` accepts
    it and the sum; when not given, `default` shortened where the new tokens would run past the end (no error of
    the user's)."""
    require_positions(arch, new_tokens + 1, f"{new_what} + 1 (a prompt of one token at least)")
    if prompt is None:
        return min(default, arch.max_position_embeddings - new_tokens)
    require_positions(arch, prompt, what)
    require_positions(arch, prompt + new_tokens, f"{what} + {new_what}")
    return prompt


# ------------------------------------------------------------------------------------------------- results
def require_finite(data: Any, where: str = "result") -> Any:
    """`data` when every number in it is finite; else a ValueError naming the first field that is not (a result
    the inputs drove out of floating-point range is refused rather than printed as inf or NaN)."""
    stack = [(where, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{path}={value} is not a finite number: the inputs are out of the range this command "
                             f"can compute")
        if isinstance(value, Mapping):
            stack.extend((f"{path}.{key}", item) for key, item in reversed(list(value.items())))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return data


def dumps(data: Any) -> str:
    """`data` as indented JSON, which never holds NaN or Infinity (`require_finite`, then `allow_nan=False`)."""
    return json.dumps(require_finite(data), indent=2, allow_nan=False)


def print_error(command: str, message: str) -> None:
    print(f"profiler {command}: error: {one_line(message)}", file=sys.stderr)
