"""Training checkpoints: weights, optimizer moments, RNG states and the data position, written atomically.

Layout under `<output_dir>/checkpoints/`:

    step-00000200/  config.json + model.safetensors   (`save_state_dict`, loadable by `from_pretrained`)
                    optimizer.safetensors             AdamW moments "optimizer/<param>/<step|exp_avg|exp_avg_sq>"
                                                      and RNG states "rng/<generator>"
                    trainer_state.json                step, data position, optimizer parameter groups, and the
                                                      run settings a resume must share
    latest          the name of the newest complete checkpoint directory

A checkpoint is assembled in `step-N.partial/` and renamed to `step-N/` only when complete; then `latest` is
replaced (atomically) and the older checkpoints of this run are renamed `step-M.deleting/` and deleted. A
checkpoint belongs to this run when its trainer_state.json records the same run settings (model, data
fingerprint, batch, schedule, seed: the same steps give the same weights); any other checkpoint is never deleted
nor overwritten (and the run directory's rules, rundir.py, keep a fresh run out of a directory that holds one).
A crash at any point leaves `latest` naming a complete checkpoint. Nothing is unpickled: tensors are safetensors, everything else JSON, and `load_checkpoint` checks
names, shapes and types, raising ValueError with the offending file and field. `latest` must name a `step-N`
directory inside `checkpoints/` whose trainer_state.json records step N.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from complexity.atomic import fsync_directory, write_atomically
from complexity.config import ComplexityConfig
from complexity.models.utils import from_pretrained, save_state_dict

CHECKPOINTS_DIR = "checkpoints"
LATEST_NAME = "latest"
STATE_NAME = "trainer_state.json"
TENSORS_NAME = "optimizer.safetensors"
FORMAT_VERSION = 1
ADAMW_STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")
STEP_DIR_PATTERN = r"step-[0-9]{8,}"  # step_dir_name's output
logger = logging.getLogger(__name__)
_PARTIAL_SUFFIX = ".partial"
_DELETING_SUFFIX = ".deleting"


@dataclass
class Checkpoint:
    """A loaded checkpoint. `model_state` is the full state dict (a tied LM head included); `optimizer_state` is
    keyed by parameter name as `torch.distributed.checkpoint.state_dict` expects: {"state": {name: {key:
    tensor}}, "param_groups": [[names of group 0], [names of group 1], ...]}."""

    directory: Path
    step: int
    samples_seen: int
    config: ComplexityConfig
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    rng: dict[str, torch.Tensor]
    run: dict[str, Any]


def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The directory `latest` names, or None when the run has no checkpoint yet.

    ValueError when `latest` holds anything but the name of a `step-N` directory of `checkpoints/` (a path such as
    ../../elsewhere or an absolute one is refused: a resume never reads outside its run)."""
    root = checkpoint_root(output_dir)
    pointer = root / LATEST_NAME
    if not pointer.is_file():
        if pointer.exists() or pointer.is_symlink():
            raise ValueError(f"{pointer} must be a file holding the name of a checkpoint directory")
        return None
    try:
        name = pointer.read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{pointer} is unreadable: {err}") from err
    if not re.fullmatch(STEP_DIR_PATTERN, name):
        raise ValueError(f"{pointer} holds {name[:80]!r}; it must name a step-NNNNNNNN directory inside {root}")
    directory = root / name
    if directory.is_symlink() or (directory.exists() and directory.resolve().parent != root.resolve()):
        raise ValueError(f"{directory} is a link; a checkpoint must be a directory inside {root}")
    return directory


def save_checkpoint(
    output_dir: str | os.PathLike,
    step: int,
    samples_seen: int,
    config: ComplexityConfig,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    rng: dict[str, torch.Tensor],
    run: dict[str, Any],
) -> Path:
    """Write a complete checkpoint of `step`, point `latest` at it, delete older ones; returns its directory.

    `optimizer_state` is what `get_optimizer_state_dict(..., full_state_dict=True)` returns: {"state": {name:
    {step, exp_avg, exp_avg_sq}}, "param_groups": [{"params": [names], **hyperparameters}]}.
    """
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    previous = latest_checkpoint(output_dir)
    if final == previous:
        return final  # this step is already the newest complete checkpoint
    partial = final.with_name(final.name + _PARTIAL_SUFFIX)
    if final.exists() and not written_by(final, run):
        raise ValueError(f"{final} exists and was not written by this run; it is left untouched: move it away")
    # Leftovers of this run's interrupted save of this very step: the partial directory, or a complete one the
    # crash left before `latest` was moved to it (the resumed run redoes the same steps and rewrites it).
    for stale in (partial, final):
        if stale.is_dir():
            shutil.rmtree(stale)
    partial.mkdir()

    tensors = {f"rng/{name}": state.contiguous() for name, state in rng.items()}
    for name, param_state in optimizer_state["state"].items():
        for key in ADAMW_STATE_KEYS:
            tensors[f"optimizer/{name}/{key}"] = torch.as_tensor(param_state[key]).detach().cpu().contiguous()
    groups = [{"params": list(g["params"]),
               **{k: v for k, v in g.items() if k != "params" and isinstance(v, (int, float, bool, tuple, list))}}
              for g in optimizer_state["param_groups"]]
    trainer_state = {"format_version": FORMAT_VERSION, "step": step, "samples_seen": samples_seen,
                     "param_groups": groups, "run": run}
    save_state_dict(model_state, config, partial)
    write_atomically(partial / TENSORS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    write_atomically(partial / STATE_NAME, lambda tmp: Path(tmp).write_text(json.dumps(trainer_state, indent=2)))
    os.replace(partial, final)
    fsync_directory(root)
    write_atomically(root / LATEST_NAME, lambda tmp: Path(tmp).write_text(final.name + "\n"))
    fsync_directory(root)
    remove_superseded(output_dir, run)
    return final


def remove_superseded(output_dir: str | os.PathLike, run: dict[str, Any]) -> list[Path]:
    """Delete this run's checkpoints other than `latest`'s (older ones, or one a crash left before `latest` moved
    to it); checkpoints of other runs are kept. Returns the deleted directories."""
    latest = latest_checkpoint(output_dir)
    removed = []
    for old in step_directories(output_dir):
        if old == latest:
            continue
        if not written_by(old, run):
            logger.warning("keeping %s: not written by this run", old)
            continue
        # Renamed first, so an interrupted deletion leaves a `.deleting` directory (swept at the next start), never
        # a half-deleted `step-N` that looks like a checkpoint.
        doomed = old.with_name(old.name + _DELETING_SUFFIX)
        os.replace(old, doomed)
        shutil.rmtree(doomed)
        removed.append(old)
    return removed


def step_directories(output_dir: str | os.PathLike) -> list[Path]:
    """The complete checkpoint directories (`step-N`, links excluded) under `checkpoints/`, by step."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if re.fullmatch(STEP_DIR_PATTERN, p.name) and p.is_dir() and not p.is_symlink())


def written_by(directory: Path, run: dict[str, Any]) -> bool:
    """Whether the checkpoint in `directory` records the run settings `run` (False when unreadable)."""
    try:
        state = _read_trainer_state(directory / STATE_NAME)
    except ValueError:
        return False
    return state["run"] == json.loads(json.dumps(run))  # compared as JSON stores them (tuples become lists)


def check_no_foreign_checkpoints(output_dir: str | os.PathLike, run: dict[str, Any]) -> None:
    """ValueError naming the checkpoints under `checkpoints/` (other than `latest`'s) that this run did not write."""
    latest = latest_checkpoint(output_dir)
    foreign = [p.name for p in step_directories(output_dir) if p != latest and not written_by(p, run)]
    if foreign:
        raise ValueError(f"{checkpoint_root(output_dir)} holds {', '.join(foreign)}, written by another run or "
                         "unreadable; one run per output directory: move them away")


def load_checkpoint(output_dir: str | os.PathLike) -> Checkpoint:
    """Read and validate the checkpoint `latest` points to; ValueError naming the file and field otherwise."""
    directory = latest_checkpoint(output_dir)
    if directory is None:
        raise ValueError(f"resume: no checkpoint in {checkpoint_root(output_dir)} (no '{LATEST_NAME}' file)")
    if not directory.is_dir():
        raise ValueError(f"resume: {checkpoint_root(output_dir) / LATEST_NAME} names {directory.name}, which "
                         "does not exist")
    state = _read_trainer_state(directory / STATE_NAME)
    if step_dir_name(state["step"]) != directory.name:
        raise ValueError(f"{directory / STATE_NAME}: step {state['step']} does not match its directory "
                         f"{directory.name}")
    model = from_pretrained(directory)  # checks names, shapes and dtypes of the weights against config.json
    model_state = {k: v.detach() for k, v in model.state_dict().items()}
    optimizer, rng = _read_tensors(directory / TENSORS_NAME, state["param_groups"], model_state)
    return Checkpoint(directory=directory, step=state["step"], samples_seen=state["samples_seen"],
                      config=model.config, model_state=model_state, optimizer_state=optimizer, rng=rng,
                      run=state["run"])


def check_same_run(saved: dict[str, Any], current: dict[str, Any], directory: Path) -> None:
    """ValueError listing every run setting that differs between a checkpoint and the run resuming it."""
    keys = sorted(saved.keys() | current.keys())
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)]
    if diffs:
        raise ValueError(f"resume: {directory} was written by a different run; an exact resume needs the same "
                         "settings: " + "; ".join(diffs))


def _read_trainer_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"{path} does not exist") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is unreadable: {err}") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version must be {FORMAT_VERSION}")
    for key, kind in (("step", int), ("samples_seen", int), ("param_groups", list), ("run", dict)):
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise ValueError(f"{path}: field {key!r} must be a {kind.__name__}, got {state.get(key)!r}")
    if state["step"] < 1 or state["samples_seen"] < 0:
        raise ValueError(f"{path}: step must be >= 1 and samples_seen >= 0")
    for i, group in enumerate(state["param_groups"]):
        names = group.get("params") if isinstance(group, dict) else None
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise ValueError(f"{path}: param_groups[{i}] must be an object whose 'params' is a list of parameter "
                             "names")
    return state


def _read_tensors(
    path: Path, groups: list[dict[str, Any]], model_state: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from err
    names = [n for g in groups for n in g.get("params", [])]
    unknown = sorted(set(names) - model_state.keys())
    if unknown:
        raise ValueError(f"{path.parent / STATE_NAME}: optimizer parameters {unknown} are not in the model")
    optimizer: dict[str, Any] = {"state": {}, "param_groups": [list(g["params"]) for g in groups]}
    for name in names:
        present = [key for key in ADAMW_STATE_KEYS if f"optimizer/{name}/{key}" in tensors]
        if not present:
            continue  # a parameter that never received a gradient has no AdamW state
        if len(present) != len(ADAMW_STATE_KEYS):
            raise ValueError(f"{path}: AdamW state of {name} has {present}, needs all of {ADAMW_STATE_KEYS}")
        param_state = {key: tensors.pop(f"optimizer/{name}/{key}") for key in ADAMW_STATE_KEYS}
        if param_state["step"].numel() != 1 or not param_state["step"].is_floating_point():
            raise ValueError(f"{path}: optimizer/{name}/step must be one floating-point number, got "
                             f"{tuple(param_state['step'].shape)} {param_state['step'].dtype}")
        shape = tuple(model_state[name].shape)
        for key in ("exp_avg", "exp_avg_sq"):
            if tuple(param_state[key].shape) != shape or not param_state[key].is_floating_point():
                raise ValueError(f"{path}: optimizer/{name}/{key} is {tuple(param_state[key].shape)} "
                                 f"{param_state[key].dtype}, the parameter is {shape}")
        optimizer["state"][name] = param_state
    rng = {name.removeprefix("rng/"): tensors.pop(name) for name in list(tensors) if name.startswith("rng/")}
    if tensors:
        raise ValueError(f"{path}: unexpected tensors {sorted(tensors)[:5]}")
    expected = torch.get_rng_state()
    cpu = rng.get("torch_cpu")
    if cpu is None or cpu.dtype != torch.uint8 or cpu.shape != expected.shape:
        raise ValueError(f"{path}: rng/torch_cpu must be a uint8 tensor of shape {tuple(expected.shape)}")
    return optimizer, rng
