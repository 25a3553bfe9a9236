"""Kill benchmark of training: SIGKILL the training CLI again and again, resume, and check the run directory.

    python scripts/kill_training.py [--kills 40] [--seed 0] [--workdir DIR]

A tiny model trains on a small seeded corpus. First one run goes through unkilled and every checkpoint it writes
is kept as the reference. Then runs are killed with SIGKILL and resumed, over and over, in three ways, in turn:

  timer    the parent kills the process after a random delay (anywhere: start-up, tokenizing, a step, a save);
  save     the process kills itself at a random point of a checkpoint save: just before or just after one of
           the renames (each file's temp -> final, step-N.partial -> step-N, latest, step-M -> step-M.deleting)
           or just before deleting the older checkpoint;
  metrics  the process kills itself just before or just after the atomic rewrite of metrics.jsonl at --resume.

After every kill the directory must be consistent: `latest` absent only if no checkpoint was ever completed,
otherwise loadable (load_checkpoint validates every file) and tensor-for-tensor equal to the reference checkpoint
of its step (never a mixed state), at a step no earlier than the last good one seen (never lost); every complete
line of metrics.jsonl valid JSON with the reference's loss. Each killed run is resumed until it finishes; the
finished run must be bit-exact with the reference (weights, optimizer moments, the training losses of
metrics.jsonl), and no temp file or partial checkpoint may be left. Prints the kill count and outcome counts; exit
status 1 when any check failed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY_MODEL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=32, num_experts=4)
WORDS = ("the cat dog bird sat ran flew on under over a mat log tree quickly slowly red blue big small and then "
         "def return class import self value print for in if else").split()
SAVE_EVENT = r"(rename:(\.?(config\.json|model\.safetensors|optimizer\.safetensors|trainer_state\.json|latest)"
SAVE_EVENT += r"|step-[0-9]+(\.deleting)?)|rmtree:step-[0-9]+\.deleting)"
METRICS_EVENT = r"rename:metrics\.jsonl"
EVENTS_PER_SAVE = 8  # 4 file renames, the directory rename, latest, the older checkpoint's rename and rmtree


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=40, help="SIGKILLs in all (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--save-interval", type=int, default=2)
    p.add_argument("--kills-per-run", type=int, default=6, help="kills of one output directory before it may finish")
    p.add_argument("--workdir", help="default: a new temporary directory, deleted at the end")
    p.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        return _child(args.child)
    if args.kills < 1 or args.max_steps < 2 or not 1 <= args.save_interval <= args.max_steps:
        p.error("--kills >= 1, --max-steps >= 2 and 1 <= --save-interval <= --max-steps")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="kill_training."))
    try:
        return Benchmark(work, args).run()
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


class Benchmark:
    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work, self.args = work, args
        self.rng = random.Random(args.seed)
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self.kills = 0

    def run(self) -> int:
        self._prepare()
        start = time.perf_counter()
        code, _ = self._launch(self.work / "reference", record=self.work / "ref")
        if code != 0:
            raise SystemExit(f"the reference run failed (exit {code})")
        self.ref_seconds = time.perf_counter() - start
        self.ref_losses = _losses(self.work / "reference")
        episode = 0
        while self.kills < self.args.kills:
            episode += 1
            self._episode(self.work / f"run{episode:03d}")
        print(f"kills: {self.kills} (SIGKILL) over {episode} output directories, each resumed to the end")
        for name, count in sorted(self.outcomes.items()):
            print(f"  {count:4d}  {name}")
        print(f"failures: {len(self.failures)}")
        for failure in self.failures:
            print(f"  {failure}")
        return 1 if self.failures else 0

    def _episode(self, out: Path) -> None:
        last_good = 0
        modes = ["timer", "save", "metrics"]
        for attempt in range(self.args.kills_per_run + 1):
            kill = attempt < self.args.kills_per_run and self.kills < self.args.kills
            mode = modes[self.kills % 3] if kill else None
            resuming = (out / "metrics.jsonl").exists() or (out / "checkpoints").exists()
            if mode == "metrics" and not (out / "checkpoints" / "latest").exists():
                mode = "save"  # the rewrite happens only when resuming from a checkpoint
            plan: dict[str, str] = {}
            delay = None
            if mode == "timer":
                delay = self.rng.uniform(0, self.ref_seconds)
            elif mode == "save":
                remaining_saves = max(1, (self.args.max_steps - last_good) // self.args.save_interval)
                plan = {"event": SAVE_EVENT, "nth": str(self.rng.randint(1, EVENTS_PER_SAVE * remaining_saves)),
                        "when": self.rng.choice(["before", "after"])}
            elif mode == "metrics":
                plan = {"event": METRICS_EVENT, "nth": "1", "when": self.rng.choice(["before", "after"])}
            code, err = self._launch(out, resume=resuming, plan=plan, delay=delay)
            if code == 0:
                if mode is not None:
                    self.outcomes[f"{mode}: finished before the kill"] += 1
                self._check_final(out)
                return
            if code != -signal.SIGKILL:
                self._fail(f"{out.name}: exit {code} instead of a kill or success: {err.strip()[-300:]}")
                return
            self.kills += 1
            last_good = self._check_after_kill(out, last_good, f"{mode} kill {self.kills}")
        self._fail(f"{out.name}: did not finish")

    def _check_after_kill(self, out: Path, last_good: int, label: str) -> int:
        """Consistency of `out` after a kill; returns the step of its latest checkpoint (0: none)."""
        from safetensors.torch import load_file

        from complexity.training.checkpoint import latest_checkpoint, load_checkpoint

        leftovers = [p for p in out.rglob("*") if p.name.endswith((".tmp", ".partial", ".deleting"))]
        mode = label.split()[0]
        try:
            latest = latest_checkpoint(out)
            if latest is None:
                if last_good:
                    self._fail(f"{label}: `latest` vanished after step {last_good} had been saved")
                self.outcomes[f"{mode}: killed before the first checkpoint"] += 1
                step = 0
            else:
                state = load_checkpoint(out)
                step = state.step
                if step < last_good:
                    self._fail(f"{label}: latest went back from step {last_good} to {step}")
                ref = self.work / "ref" / latest.name
                for name in ("model.safetensors", "optimizer.safetensors"):
                    a, b = load_file(latest / name), load_file(ref / name)
                    if a.keys() != b.keys() or any(not a[k].equal(b[k]) for k in a):
                        self._fail(f"{label}: {latest / name} differs from the reference checkpoint of its step")
                for name in ("config.json", "trainer_state.json"):
                    if json.loads((latest / name).read_text()) != json.loads((ref / name).read_text()):
                        self._fail(f"{label}: {latest / name} differs from the reference")
                self.outcomes[f"{mode}: latest loads and equals the reference at its step"] += 1
        except ValueError as err:
            self._fail(f"{label}: the checkpoint does not load: {err}")
            return last_good
        if leftovers:
            self.outcomes[f"{mode}: left temp files or partial/deleting directories (swept at the next start)"] += 1
        self._check_metrics(out, label, complete=False)
        return step

    def _check_metrics(self, out: Path, label: str, complete: bool) -> None:
        path = out / "metrics.jsonl"
        if not path.exists():
            return
        lines = path.read_text().split("\n")
        for number, raw in enumerate(lines, start=1):
            if not raw:
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                if number == len(lines) and not complete:
                    continue  # an append cut short: dropped at the resume
                self._fail(f"{label}: {path} line {number} is not JSON")
                continue
            if "loss" in record and record["loss"] != self.ref_losses.get(record["step"]):
                self._fail(f"{label}: step {record['step']} loss {record['loss']} != reference")

    def _check_final(self, out: Path) -> None:
        from safetensors.torch import load_file

        from complexity.training.checkpoint import latest_checkpoint

        final, ref = latest_checkpoint(out), latest_checkpoint(self.work / "reference")
        for name in ("model.safetensors", "optimizer.safetensors"):
            a, b = load_file(final / name), load_file(ref / name)
            if a.keys() != b.keys() or any(not a[k].equal(b[k]) for k in a):
                self._fail(f"{out.name}: the finished run's {name} is not bit-exact with the unkilled run")
        if _losses(out) != self.ref_losses:
            self._fail(f"{out.name}: the finished run's training losses differ from the unkilled run")
        steps = [json.loads(line).get("step") for line in (out / "metrics.jsonl").read_text().splitlines()]
        if [s for s in steps if s is not None] != [s for s in _steps(self.work / "reference") if s is not None]:
            self._fail(f"{out.name}: metrics.jsonl steps differ from the unkilled run's (duplicates or gaps)")
        left = [p for p in out.rglob("*") if p.name.endswith((".tmp", ".partial", ".deleting"))]
        if left:
            self._fail(f"{out.name}: left after the finished run: {[str(p) for p in left]}")
        others = [p.name for p in (out / "checkpoints").iterdir() if p.name not in ("latest", final.name)]
        if others:
            self._fail(f"{out.name}: checkpoints besides the latest left after the finished run: {others}")
        self.outcomes["finished runs bit-exact with the unkilled run"] += 1

    def _fail(self, message: str) -> None:
        self.failures.append(message)

    def _prepare(self) -> None:
        from complexity.training.tokenizer import save_tokenizer, train_tokenizer

        corpus = self.work / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        rng = random.Random(0)
        for i in range(12):
            sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "." for _ in range(120)]
            (corpus / f"doc{i:02d}.txt").write_text("\n".join(sentences) + "\n")
        save_tokenizer(train_tokenizer(sorted(corpus.iterdir()), vocab_size=320), self.work / "tokenizer.json")
        (self.work / "model.json").write_text(json.dumps(TINY_MODEL))
        self.train_argv = [
            "--data", str(corpus), "--config", str(self.work / "model.json"), "--tokenizer",
            str(self.work / "tokenizer.json"), "--seq-len", "16", "--micro-batch-size", "2", "--grad-accum", "2",
            "--max-steps", str(self.args.max_steps), "--lr", "3e-3", "--warmup-steps", "2", "--eval-interval",
            "4", "--eval-batches", "2", "--eval-fraction", "0.05", "--save-interval", str(self.args.save_interval),
            "--precision", "fp32", "--no-progress"]

    def _launch(self, out: Path, resume: bool = False, plan: dict | None = None, delay: float | None = None,
                record: Path | None = None) -> tuple[int, str]:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [
            str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))}
        for key, value in (plan or {}).items():
            env[f"KILL_{key.upper()}"] = value
        if record is not None:
            env["KILL_RECORD"] = str(record)
        argv = [sys.executable, __file__, "--child", "--output-dir", str(out), *self.train_argv]
        if resume:
            argv.append("--resume")
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL
                proc.wait()
            err.seek(0)
            return proc.returncode, err.read()


def _child(argv: list[str]) -> int:
    """The training CLI, with SIGKILL armed at the event KILL_EVENT's KILL_NTH occurrence (KILL_WHEN: before or
    after it) and, with KILL_RECORD, a copy of every checkpoint it writes."""
    import torch

    torch.set_num_threads(1)
    import complexity.training.checkpoint as ckpt
    from complexity.training.cli import train_main

    event, nth, when = os.environ.get("KILL_EVENT"), int(os.environ.get("KILL_NTH", "0")), os.environ.get("KILL_WHEN")
    seen = 0

    def maybe_kill(name: str, moment: str) -> None:
        nonlocal seen
        if event and re.fullmatch(event, name):
            if moment == "before":
                seen += 1
            if seen == nth and moment == when:
                os.kill(os.getpid(), signal.SIGKILL)

    real_replace, real_rmtree = os.replace, shutil.rmtree

    def replace(src, dst, **kwargs):
        name = f"rename:{Path(dst).name}"
        maybe_kill(name, "before")
        real_replace(src, dst, **kwargs)
        maybe_kill(name, "after")

    def rmtree(path, *args, **kwargs):
        name = f"rmtree:{Path(path).name}"
        maybe_kill(name, "before")
        real_rmtree(path, *args, **kwargs)
        maybe_kill(name, "after")

    os.replace, shutil.rmtree = replace, rmtree
    record = os.environ.get("KILL_RECORD")
    if record:
        real_save = ckpt.save_checkpoint

        def save_and_copy(*args, **kwargs):
            directory = real_save(*args, **kwargs)
            shutil.copytree(directory, Path(record) / directory.name, dirs_exist_ok=True)
            return directory

        ckpt.save_checkpoint = save_and_copy
    return train_main(argv)


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if "loss" in r}


def _steps(out: Path) -> list[int | None]:
    return [json.loads(line).get("step") for line in (out / "metrics.jsonl").read_text().splitlines()]


if __name__ == "__main__":
    sys.exit(main())
