"""Cross-check of the CPU peak-memory tracker against the CPU allocator's own record, on zoo training steps.

    python scripts/check_memory.py [--sizes tiny,20m,small] [--batches 1,4] [--seq-lens 128,512]

For each size × batch × sequence length, in a fresh process (the allocator keeps its table of block sizes from
one profile to the next, which would corrupt a second profile in the same process): inside a
`torch.profiler` memory profile, build the zoo model (`resolve(size).build("cpu")`, fp32), make the train step
(`make_step`: zero_grad to None, forward with labels, backward, AdamW) and warm it up once so the gradients
and AdamW's state exist; measure one step with `allocator_peak` (the allocator's events) and the next with
`CpuDevice.track_memory` (the tracker `measure` uses). One torch thread.

Prints a Markdown table: both peaks in MiB, the difference tracker − allocator of the start in bytes, and of
the peak and of the peak above the start in bytes and relative to the allocator's figure. `unseen frees` says
whether the allocator logged a free of a block allocated before its profile began (its figures would then be too
high).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

UNSEEN_FREE_WARNING = "Memory block of unknown size was allocated before the profiling started"
MIB = 2**20


def measure_point(size: str, batch: int, seq_len: int) -> dict[str, Any]:
    """The tracker's and the allocator's MemoryStats (as dicts) of one warmed-up train step."""
    import torch

    from profiler.measuring.device import CpuDevice
    from profiler.measuring.harness import make_step
    from profiler.measuring.memory_check import allocator_peak
    from profiler.source import resolve

    torch.set_num_threads(1)
    torch.manual_seed(0)
    source = resolve(size)
    state: dict[str, Any] = {}

    def setup() -> None:
        ids = torch.randint(source.arch.vocab_size, (batch, seq_len), generator=torch.Generator().manual_seed(0))
        state["step"], _ = make_step(source.build("cpu"), "train", ids)
        state["step"]()  # warm-up: the gradients and AdamW's state now exist

    allocator = allocator_peak(lambda: state["step"](), setup)
    with CpuDevice(torch.device("cpu")).track_memory() as tracker:
        state["step"]()
    return {"tracker": tracker.to_dict(), "allocator": allocator.to_dict()}


def run_point(size: str, batch: int, seq_len: int) -> tuple[dict[str, Any], bool]:
    """`measure_point` in a fresh Python process; also whether the allocator logged an unseen free."""
    done = subprocess.run([sys.executable, __file__, "--point", f"{size},{batch},{seq_len}"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{size} batch {batch} seq {seq_len} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1]), UNSEEN_FREE_WARNING in done.stderr


def relative(a: int, b: int) -> str:
    """(a − b) / b as a signed percentage."""
    return f"{(a - b) / b:+.4%}" if b else "n/a"


def table_row(size: str, batch: int, seq_len: int, tracker: dict[str, Any], allocator: dict[str, Any],
              unseen: bool) -> str:
    """One line of the Markdown table printed by `main`."""
    peak, delta = "peak_bytes", "peak_delta_bytes"
    cells = [size, batch, seq_len, f"{tracker[peak] / MIB:,.1f}", f"{allocator[peak] / MIB:,.1f}",
             f"{tracker['start_bytes'] - allocator['start_bytes']:+,}", f"{tracker[peak] - allocator[peak]:+,}",
             relative(tracker[peak], allocator[peak]), f"{tracker[delta] / MIB:,.1f}", f"{allocator[delta] / MIB:,.1f}",
             relative(tracker[delta], allocator[delta]), "yes" if unseen else "no"]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,20m,small")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--seq-lens", default="128,512")
    parser.add_argument("--point", help=argparse.SUPPRESS)  # size,batch,seq_len: the child process's job
    args = parser.parse_args()
    if args.point:
        size, batch, seq_len = args.point.split(",")
        print(json.dumps(measure_point(size, int(batch), int(seq_len))))
        return

    print("| size | batch | seq | tracker peak MiB | allocator peak MiB | start diff bytes | peak diff bytes "
          "| peak diff | above start: tracker MiB | allocator MiB | diff | unseen frees |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    began = time.perf_counter()
    for size in args.sizes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            for seq_len in (int(s) for s in args.seq_lens.split(",")):
                point, unseen = run_point(size, batch, seq_len)
                print(table_row(size, batch, seq_len, point["tracker"], point["allocator"], unseen), flush=True)
    print(f"\n{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
