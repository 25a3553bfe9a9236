"""Process-wide settings the commands own and library code never touches: torch's intra-op thread count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from complexity.inputs import require_int


def default_threads(threads: int | None, device: str) -> int | None:
    """The thread count a timing command runs with: the one asked for, else 1 on the CPU device (so the CPU clock
    times the work alone on a shared machine, docs/estimating.md), else torch's own (None)."""
    if threads is not None:
        return require_int("threads", threads, 1)
    return 1 if device.split(":")[0] == "cpu" else None


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with torch using `threads` intra-op threads (None: leave torch's setting), and restore the
    previous count afterwards, so a caller (a notebook, a test) keeps its own."""
    if threads is None:
        yield
        return
    require_int("threads", threads, 1)
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
