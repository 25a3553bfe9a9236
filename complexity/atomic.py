"""Atomic file writes without torch, shared by checkpoints and the profiler's hardware profiles: one file
(`write_atomically`) or a set of files replaced as one unit (`write_files_together`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, fsync it, then rename it over `path`.

    A reader sees either the old file or the complete new one, never a partial write (os.replace is atomic on
    POSIX and Windows when both names are on one filesystem, which a sibling temp file guarantees)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the result is an ordinary readable file
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------- file sets
# Several files replaced as one unit (config.json + model.safetensors). POSIX renames one name atomically but
# offers no atomic swap of two names or of two directories (Linux's renameat2(RENAME_EXCHANGE) is not POSIX), so
# the unit is committed by a single directory rename and then applied, with roll-forward after a crash:
#
#   1. stage   every new file into `.saving-<pid>-<random>/` inside the target directory, fsync each;
#   2. commit  rename that directory to `.committed-<pid>-<random>/` (one atomic rename: the commit point);
#   3. apply   move each file from the committed directory over its final name, then remove the empty directory.
#
# At every instant the current set is well defined: for each name, the copy in a committed directory if one is
# there, else the file at the top (`current_files`). A kill before step 2 leaves the old set (the staging
# directory is garbage, swept by the next write); a kill after it leaves the new set, the next write finishing
# step 3 first. Readers never write: `current_files` resolves the set read-only. One writer per directory at a
# time (concurrent writers are not supported; a staging directory of a live process is left alone).
STAGING_PREFIX = ".saving-"
COMMITTED_PREFIX = ".committed-"


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make renames and removals inside `directory` durable (POSIX; a no-op where directories cannot be opened)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _writer_alive(entry: Path, prefix: str) -> bool:
    """Whether the process whose pid the staging directory's name carries still runs (and is not this one)."""
    pid_text = entry.name[len(prefix):].split("-", 1)[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user holds that pid
        return True
    return True


def _committed_directory(directory: Path) -> Path | None:
    committed = sorted(p for p in directory.glob(COMMITTED_PREFIX + "*") if p.is_dir())
    if len(committed) > 1:
        raise ValueError(f"{directory} holds {len(committed)} committed file sets ({[p.name for p in committed]}): "
                         "two writers saved into it at once; remove all but the one to keep")
    return committed[0] if committed else None


def current_files(directory: str | os.PathLike, names: tuple[str, ...]) -> dict[str, Path]:
    """The path of each of `names` in the set last committed into `directory` by `write_files_together`
    (the top-level file unless an interrupted write left its newer copy in a committed directory). Read-only."""
    directory = Path(directory)
    committed = _committed_directory(directory)
    return {name: committed / name if committed is not None and (committed / name).is_file() else directory / name
            for name in names}


def finish_interrupted_writes(directory: str | os.PathLike, names: tuple[str, ...] = ()) -> None:
    """Roll forward a committed set left by a killed `write_files_together`, and delete what killed writers left
    uncommitted: staging directories and the `.NAME.*.tmp` files of `write_atomically` for each of `names`."""
    directory = Path(directory)
    committed = _committed_directory(directory)
    if committed is not None:
        _apply(committed, directory)
    for entry in directory.glob(STAGING_PREFIX + "*"):
        if entry.is_dir() and not _writer_alive(entry, STAGING_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
    for name in names:
        for stale in directory.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def _apply(committed: Path, directory: Path) -> None:
    for entry in sorted(committed.iterdir()):
        os.replace(entry, directory / entry.name)
    fsync_directory(directory)
    committed.rmdir()
    fsync_directory(directory)


def write_files_together(directory: str | os.PathLike, writers: dict[str, Callable[[str], object]]) -> None:
    """Replace the files `writers` names in `directory` as one unit: `writers[name](path)` writes the new `name`
    at `path`. After a crash at any moment the set is either all old or all new (see `current_files`); the next
    call first finishes or sweeps what the crashed one left. Other files in `directory` are left untouched."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    finish_interrupted_writes(directory, tuple(writers))
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=f"{STAGING_PREFIX}{os.getpid()}-"))
    try:
        for name, write in writers.items():
            path = staging / name
            write(str(path))
            os.chmod(path, 0o644)
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
        fsync_directory(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    committed = directory / (COMMITTED_PREFIX + staging.name[len(STAGING_PREFIX):])
    os.rename(staging, committed)  # the commit point
    fsync_directory(directory)
    _apply(committed, directory)
