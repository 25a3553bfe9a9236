"""Architectures: validation, and packing into one zero-padded integer array that the formulas read.

An architecture is a list of 1..5 sub-architectures (MIN_SUBARCHES .. len(NETWORK_MODIFIERS)), sub-architecture i
weighted by NETWORK_MODIFIERS row i; a sub-architecture is a list of 1..5 layer widths (DEPTH_RANGE), each an
integer in [64, 2048] (FLAX_RANGE). Packed form: an int64 array of shape (N, MAX_SUBARCHES, DEPTH_RANGE[1]);
widths[n, i, k] is layer k of sub-architecture i of architecture n, and 0 marks "no layer". Layers fill each row
from k = 0 and sub-architectures fill slots from i = 0, so the padding is all at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from simulator.config import Architecture, SimulatorConfig


def normalize(architecture: Any, config: SimulatorConfig, name: str = "architecture") -> Architecture:
    """`architecture` as a tuple of tuples of ints, after the checks `pack` makes; errors name it `name`."""
    pack([architecture], config, name=name, single=True)
    return tuple(tuple(int(w) for w in sub) for sub in architecture)


def unpack(widths: np.ndarray) -> Architecture:
    """One packed architecture, shape (MAX_SUBARCHES, DEPTH_RANGE[1]), back as a tuple of tuples of ints."""
    return tuple(tuple(int(w) for w in row if w) for row in widths if row[0])


def pack(architectures: list | tuple, config: SimulatorConfig, name: str = "architectures",
         single: bool = False) -> np.ndarray:
    """Validate nested lists (or tuples) of widths and pack them (see the module docstring).

    Errors name the offending entry as name[n][i][k] (architecture n, sub-architecture i, layer k); `single`
    drops the [n] for a lone architecture.
    """
    if not isinstance(architectures, (list, tuple)):
        raise ValueError(f"{name} must be a list of architectures, got {type(architectures).__name__}")
    slots, depth = config.MAX_SUBARCHES, config.DEPTH_RANGE[1]
    flat: list[int] = []
    empty_sub = [0] * depth
    for n, arch in enumerate(architectures):
        where = name if single else f"{name}[{n}]"
        if not isinstance(arch, (list, tuple)):
            raise ValueError(f"{where} must be a list of sub-architectures (lists of widths), "
                             f"got {type(arch).__name__}")
        if not config.MIN_SUBARCHES <= len(arch) <= slots:
            raise ValueError(_count_error(where, len(arch), config))
        for i, sub in enumerate(arch):
            if not isinstance(sub, (list, tuple)):
                raise ValueError(f"{where}[{i}] must be a list of layer widths, got {type(sub).__name__}")
            if not config.DEPTH_RANGE[0] <= len(sub) <= depth:
                raise ValueError(_depth_error(f"{where}[{i}]", len(sub), config))
            if 0 in sub:  # 0 means "no layer" once packed, so it must not slip through as padding
                k = list(sub).index(0)
                raise ValueError(f"{where}[{i}][{k}]={sub[k]!r} is outside FLAX_RANGE: a width must be an integer "
                                 f"in {_flax(config)}")
            flat.extend(sub)
            flat.extend(empty_sub[len(sub):])
        flat.extend(empty_sub * (slots - len(arch)))
    if not set(map(type, flat)) <= {int}:  # one pass over all widths; bool is a subclass of int, not int itself
        _check_integers(architectures, config, name, single)
    try:
        widths = np.array(flat, dtype=np.int64).reshape(len(architectures), slots, depth)
    except OverflowError as err:
        raise ValueError(f"{name}: a width does not fit in 64 bits; a width must be an integer in {_flax(config)}") from err
    _check_widths(widths, config, name, single)  # counts, depths and zeros were checked above
    return widths


def _check_integers(architectures: list | tuple, config: SimulatorConfig, name: str, single: bool) -> None:
    """Raise for the first width that is not an integer (Python or numpy; bool is not an integer width)."""
    for n, arch in enumerate(architectures):
        for i, sub in enumerate(arch):
            for k, w in enumerate(sub):
                if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, np.integer)):
                    where = name if single else f"{name}[{n}]"
                    raise ValueError(f"{where}[{i}][{k}]={w!r} must be an integer width in {_flax(config)}")


def check_packed(widths: Any, config: SimulatorConfig, name: str = "widths", single: bool = False) -> np.ndarray:
    """Validate a packed array (vectorised) and return it as int64 of shape (N, MAX_SUBARCHES, DEPTH_RANGE[1]).

    A narrower array (fewer slots or layers) is padded with zeros; checks: widths in FLAX_RANGE or 0, padding only
    at the end, DEPTH_RANGE layers per present sub-architecture, MIN_SUBARCHES..MAX_SUBARCHES sub-architectures.
    """
    slots, max_depth = config.MAX_SUBARCHES, config.DEPTH_RANGE[1]
    if not isinstance(widths, np.ndarray) or widths.ndim != 3 or not np.issubdtype(widths.dtype, np.integer):
        raise ValueError(f"{name} must be an integer numpy array of shape (N, <= {slots} sub-architectures, "
                         f"<= {max_depth} layers), 0 = no layer")
    if widths.shape[1] > slots or widths.shape[2] > max_depth:
        raise ValueError(f"{name} has shape {widths.shape}; at most {slots} sub-architectures "
                         f"(len(NETWORK_MODIFIERS)) of at most {max_depth} layers (DEPTH_RANGE)")
    padded = np.zeros((widths.shape[0], slots, max_depth), dtype=np.int64)
    padded[:, :widths.shape[1], :widths.shape[2]] = widths

    _check_widths(padded, config, name, single)
    where = _locator(name, single)
    present = padded != 0
    gap = present[..., 1:] & ~present[..., :-1]
    if gap.any():
        index = tuple(int(j) for j in np.argwhere(gap)[0])
        raise ValueError(f"{where(index)} is 0 (no layer) but layer {index[2] + 1} follows; padding goes at the end")
    depth = present.sum(axis=-1)
    sub_present = depth > 0
    gap = sub_present[:, 1:] & ~sub_present[:, :-1]
    if gap.any():
        n, i = (int(j) for j in np.argwhere(gap)[0])
        raise ValueError(f"{where((n, i))} is empty but sub-architecture {i + 1} follows; padding goes at the end")
    shallow = sub_present & (depth < config.DEPTH_RANGE[0])
    if shallow.any():
        n, i = (int(j) for j in np.argwhere(shallow)[0])
        raise ValueError(_depth_error(where((n, i)), int(depth[n, i]), config))
    count = sub_present.sum(axis=-1)
    few = count < config.MIN_SUBARCHES
    if few.any():
        n = int(np.argmax(few))
        raise ValueError(_count_error(where((n,)), int(count[n]), config))
    return padded


def _locator(name: str, single: bool) -> Callable[[tuple[int, ...]], str]:
    """index (n, i, k) -> "name[n][i][k]", or "name[i][k]" for a lone architecture."""
    return lambda index: (name if single else f"{name}[{index[0]}]") + "".join(f"[{j}]" for j in index[1:])


def _check_widths(widths: np.ndarray, config: SimulatorConfig, name: str, single: bool) -> None:
    """Every width is 0 (no layer) or in FLAX_RANGE."""
    low, high = config.FLAX_RANGE
    bad = (widths != 0) & ((widths < low) | (widths > high))
    if bad.any():
        index = tuple(int(j) for j in np.argwhere(bad)[0])
        raise ValueError(f"{_locator(name, single)(index)}={widths[index]} is outside FLAX_RANGE: a width must be an "
                         f"integer in {_flax(config)}")


def _flax(config: SimulatorConfig) -> str:
    return f"[{config.FLAX_RANGE[0]}, {config.FLAX_RANGE[1]}] (FLAX_RANGE)"


def _count_error(where: str, count: int, config: SimulatorConfig) -> str:
    return (f"{where} has {count} sub-architectures; allowed {config.MIN_SUBARCHES}..{config.MAX_SUBARCHES} "
            f"(MIN_SUBARCHES..len(NETWORK_MODIFIERS))")


def _depth_error(where: str, depth: int, config: SimulatorConfig) -> str:
    return f"{where} has {depth} layers; allowed {config.DEPTH_RANGE[0]}..{config.DEPTH_RANGE[1]} (DEPTH_RANGE)"
