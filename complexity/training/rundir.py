"""One run per output directory: an exclusive lock, the rules for starting or resuming there, and the sweep of
what killed writers leave behind.

The lock is `<output_dir>/.train.lock`, held with `fcntl.flock` for the whole run and holding "pid host" of its
owner. The kernel drops a flock when its process dies (SIGKILL included), so a lock whose file names a dead process
is simply taken over (logged); a lock held by a live process is refused with its PID and host. Taking the lock and
writing into the directory are the first things a run does, so an unwritable directory fails before any long work.

A fresh run (no resume) accepts only an empty directory, or one holding nothing but the reusable preparation
cache (tokenizer.json, data/): it never runs beside, or deletes, another run's checkpoints or metrics. Under the
lock, stale temporary files of the run's own writers (`.<name>.<random>.tmp` of `write_atomically`) and
interrupted checkpoint directories (`step-N.partial`, `step-N.deleting`) are removed; nothing else is.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import shutil
import socket
from pathlib import Path

from complexity.training import checkpoint as ckpt
from complexity.training.data import TOKENS_META_NAME, TOKENS_NAME
from complexity.training.tokenizer import TOKENIZER_NAME

logger = logging.getLogger(__name__)

LOCK_NAME = ".train.lock"
METRICS_NAME = "metrics.jsonl"
DATA_DIR = "data"
_CACHE_ENTRIES = {TOKENIZER_NAME, DATA_DIR, LOCK_NAME}  # what a fresh run may find and reuse
_RUN_ENTRIES = {METRICS_NAME, ckpt.CHECKPOINTS_DIR}  # what shows that a run started here
# The files each directory's writers create through write_atomically, whose temp files may be swept.
_ATOMIC_NAMES = {
    ".": (METRICS_NAME, TOKENIZER_NAME),
    DATA_DIR: (TOKENS_NAME, TOKENS_META_NAME),
    ckpt.CHECKPOINTS_DIR: (ckpt.LATEST_NAME,),
}
_CHECKPOINT_FILES = ("config.json", "model.safetensors", ckpt.TENSORS_NAME, ckpt.STATE_NAME)


class RunLock:
    """The exclusive lock of one output directory; `release()` (or leaving the `with` block) gives it back."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory, self._fd = directory, fd

    @property
    def path(self) -> Path:
        return self.directory / LOCK_NAME

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: see acquire_lock for why this is safe
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire_lock(directory: str | os.PathLike) -> RunLock:
    """Take the exclusive lock of `directory` (which must exist); ValueError naming the owner when it is held."""
    directory = Path(directory)
    path = directory / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            raise ValueError(f"output_dir={str(directory)!r} is not writable: {err.strerror}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            owner = _read_owner(fd)
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ValueError(f"{path}: cannot lock: {err.strerror}") from err
            raise ValueError(f"output_dir={str(directory)!r} is in use by another training run ({owner}, lock file "
                             f"{path}); one run per output directory") from None
        # The owner before us unlinks the file while it still holds the lock; if that happened between our open
        # and our flock, we hold a lock on a file nobody else can find: start again on the current one.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read_owner(fd)
    if previous != "no owner recorded":
        logger.warning("taking over the stale lock %s of %s, which no longer runs", path, previous)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} host {socket.gethostname()}\n".encode(), 0)
    os.fsync(fd)
    return RunLock(directory, fd)


def _read_owner(fd: int) -> str:
    text = os.pread(fd, 256, 0).decode(errors="replace").strip()
    return text or "no owner recorded"


def check_start(directory: str | os.PathLike, resume: bool) -> bool:
    """Whether the run in `directory` continues an earlier one (True) or starts at step 0 (False).

    A fresh run refuses a directory holding anything but the preparation cache; a resume needs a run to have
    started there (metrics.jsonl or checkpoints/). A resume that finds no checkpoint yet (the earlier run was
    stopped before its first save) starts again from step 0. Raises ValueError naming what was found."""
    directory = Path(directory)
    entries = sorted(p.name for p in directory.iterdir())
    started = [e for e in entries if e in _RUN_ENTRIES]
    if not resume:
        foreign = [e for e in entries if e not in _CACHE_ENTRIES and not _is_stale_temp(directory / e, ".")]
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            hint = "pass resume (--resume) to continue that run, or " if started else ""
            raise ValueError(f"output_dir={str(directory)!r} is not empty (it holds {shown}); one run per output "
                             f"directory: {hint}choose a new or empty directory")
        return False
    if not started:
        raise ValueError(f"resume: no run to resume in output_dir={str(directory)!r} (no {METRICS_NAME}, no "
                         f"{ckpt.CHECKPOINTS_DIR}/)")
    return True


def sweep(directory: str | os.PathLike) -> list[Path]:
    """Remove the stale temp files and interrupted checkpoint directories of the run in `directory` (call it
    under the lock); returns what was removed. Complete checkpoints are never touched."""
    directory = Path(directory)
    removed = []
    for sub, names in _ATOMIC_NAMES.items():
        removed += _remove_temps(directory / sub, names)
    root = directory / ckpt.CHECKPOINTS_DIR
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if not entry.is_dir() or entry.is_symlink():
                continue
            if re.fullmatch(ckpt.STEP_DIR_PATTERN + r"\.(partial|deleting)", entry.name):
                shutil.rmtree(entry)
                removed.append(entry)
            elif re.fullmatch(ckpt.STEP_DIR_PATTERN, entry.name):
                removed += _remove_temps(entry, _CHECKPOINT_FILES)
    for path in removed:
        logger.info("removed %s, left by an interrupted writer", path)
    return removed


def _remove_temps(directory: Path, names: tuple[str, ...]) -> list[Path]:
    if not directory.is_dir():
        return []
    stale = [p for p in sorted(directory.iterdir()) if p.is_file() and _is_temp_of(p.name, names)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _is_stale_temp(path: Path, sub: str) -> bool:
    return path.is_file() and _is_temp_of(path.name, _ATOMIC_NAMES[sub])


def _is_temp_of(filename: str, names: tuple[str, ...]) -> bool:
    """Whether `filename` is a temp file write_atomically makes for one of `names`: ".<name>.<random>.tmp"."""
    return any(filename.startswith(f".{name}.") and filename.endswith(".tmp") for name in names)
