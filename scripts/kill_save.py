"""SIGKILL `save_pretrained` at random moments and check that the directory always holds one complete pair.

    python scripts/kill_save.py [--kills 40] [--hidden 384] [--layers 4] [--seed 0] [--dir DIR]

A directory holds the save of model A (seed 1). Each round forks a child that saves the other model over it
(A <-> B, so every round replaces an existing save) and the parent SIGKILLs the child after a delay drawn
uniformly from [0, T]. T starts at 1.5 x the median time of an uninterrupted forked save and adapts to the load
(x 0.9 after a save that finished before its kill, x 1.02 after a kill: about 1 round in 6 finishes first, so the
kills cover the whole save, its last renames included); rounds go on until `--kills` saves were killed mid-way. The parent then reaps the child and checks:

* `from_pretrained` loads the directory, and the SHA-256 of the loaded weights equals that of the old model or
  of the new one (never anything else, never an error);
* a child that finished before the kill left the new model;
* at most one leftover entry of a killed save (a staging or committed directory) is present, never more: the
  next save sweeps it.

The model: vocab 32,000, fp32, tied embeddings, `--hidden` / `--layers` (defaults: about 78 MB of weights).
Prints the counts per outcome; exits 1 if any check failed. Uses os.fork (POSIX only); the child
runs no torch compute, only the save.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch

from complexity.atomic import COMMITTED_PREFIX, STAGING_PREFIX
from complexity.models.utils import create_complexity_model, from_pretrained, save_pretrained


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the state dict's names and raw bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def leftovers(directory: Path) -> list[Path]:
    """What killed saves left: staging and committed directories."""
    return [p for p in directory.iterdir() if p.name.startswith((STAGING_PREFIX, COMMITTED_PREFIX))]


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def save_in_child(model: torch.nn.Module, directory: Path) -> int:
    pid = os.fork()
    if pid == 0:  # child: save and leave without running any Python cleanup, as a killed process would
        try:
            save_pretrained(model, directory)
        finally:
            os._exit(0)
    return pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a fresh temp directory)")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error(f"--kills={args.kills} must be at least 1")
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="kill_save_")) if args.dir is None else args.dir
    directory = root / "model"
    if directory.exists():
        parser.error(f"{directory} exists; give an empty --dir")

    sizes = dict(hidden_size=args.hidden, num_hidden_layers=args.layers, intermediate_size=args.hidden * 8 // 3 // 64 * 64,
                 num_attention_heads=args.hidden // 64, num_key_value_heads=args.hidden // 64)
    models = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        models.append(create_complexity_model("tiny", **sizes))
    hashes = [weights_sha256(m) for m in models]
    save_pretrained(models[0], directory)
    weights_mb = (directory / "model.safetensors").stat().st_size / 1e6
    durations = []
    for target in (1, 0, 1, 0):  # forked like the killed saves, so the delay matches what they take
        start = time.perf_counter()
        os.waitpid(save_in_child(models[target], directory), 0)
        durations.append(time.perf_counter() - start)
    save_s = sorted(durations)[len(durations) // 2]
    print(f"model: {weights_mb:.1f} MB of weights; one uninterrupted forked save takes {save_s * 1e3:.0f} ms "
          f"(median of 4); first kill delay ~ U(0, {1.5 * save_s * 1e3:.0f} ms)")

    current, delay_s = 0, 1.5 * save_s
    counts = {"killed, old pair": 0, "killed, new pair": 0, "finished before the kill, new pair": 0,
              "new pair still in a committed directory (rolled forward on read)": 0}
    failures: list[str] = []
    most_leftovers, most_leftover_bytes = 0, 0
    rounds = 0
    while counts["killed, old pair"] + counts["killed, new pair"] + len(failures) < args.kills:
        if rounds == 10 * args.kills:
            failures.append(f"only {args.kills - len(failures)} of {rounds} rounds killed the save mid-way")
            break
        round_, rounds = rounds, rounds + 1
        target = 1 - current
        pid = save_in_child(models[target], directory)
        time.sleep(rng.uniform(0, delay_s))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        finished = os.WIFEXITED(status)
        # The machine's load changes how long a save takes: shorten the window after a save that beat the kill,
        # widen it after a kill, so that about 1 round in 6 finishes first (the kills cover the save to its end).
        delay_s *= 0.9 if finished else 1.02
        left = leftovers(directory)
        most_leftovers = max(most_leftovers, len(left))
        most_leftover_bytes = max(most_leftover_bytes, sum(tree_bytes(p) for p in left))
        if len(left) > 1:
            failures.append(f"round {round_}: {len(left)} leftovers {[p.name for p in left]}")
        if any(p.name.startswith(COMMITTED_PREFIX) and any(p.iterdir()) for p in left):
            counts["new pair still in a committed directory (rolled forward on read)"] += 1
        try:
            loaded = weights_sha256(from_pretrained(directory))
        except ValueError as err:
            failures.append(f"round {round_}: does not load: {err}")
            continue
        if loaded == hashes[target]:
            counts["finished before the kill, new pair" if finished else "killed, new pair"] += 1
            current = target
        elif loaded == hashes[current] and not finished:
            counts["killed, old pair"] += 1
        else:
            failures.append(f"round {round_}: loaded weights are neither the old nor the new model "
                            f"(child finished: {finished})")
    save_pretrained(models[current], directory)  # a clean save sweeps whatever the last kill left
    final = sorted(p.name for p in directory.iterdir())
    if final != ["config.json", "model.safetensors"]:
        failures.append(f"after a clean save the directory holds {final}")

    print(f"{rounds} rounds, each a SIGKILL sent during save_pretrained over an existing save (final T "
          f"{delay_s * 1e3:.0f} ms):")
    for outcome, n in counts.items():
        print(f"  {n:3d}  {outcome}")
    print(f"  {len(failures):3d}  failures (mixed pair, unloadable, or leftovers accumulating)")
    print(f"most leftovers of killed saves present at once: {most_leftovers} entry, {most_leftover_bytes / 1e6:.1f} MB "
          f"(swept by the next save); after a clean save: {final}")
    for failure in failures:
        print("FAIL", failure)
    if args.dir is None:
        shutil.rmtree(root)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
