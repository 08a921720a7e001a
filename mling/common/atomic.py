"""Outputs that appear whole or not at all, and never destroy what the toolkit did not write.

A file is written beside its target and renamed into place; a folder is built in a staging
folder beside its target (the same file system, so the rename is atomic) and swapped in. A
reader, or the next run, never sees half an output. Every writer in the toolkit goes through
these functions.

Before a folder is built, `claim_output` refuses what publishing it would destroy: a file, a
path under a file, one of the run's inputs (or a folder holding one), a non-empty folder
(with `overwrite`, only one that this toolkit published: it carries the MARKER file); and it
locks the target, so that a second run on the same output refuses instead of mixing with it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mling.common.errors import InputError

MARKER = ".mling-output"  # inside every folder the toolkit publishes: what may be replaced


def write_atomic(path: str | Path, payload: bytes) -> Path:
    """Write bytes to a temp file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        # mkstemp creates 0600 files; an output is for everyone the umask allows.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def staging_dir(target: str | Path, kind: str = "tmp") -> Path:
    """A new empty folder `.NAME.KIND-XXXX` beside `target`, for building it (or scratch)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-", dir=target.parent))


def check_output(target: str | Path, overwrite: bool = False, inputs: Iterable = ()) -> Path:
    """The target folder, if publishing it destroys nothing; else one InputError line."""
    target = Path(target).absolute()
    for parent in target.parents:
        if parent.is_file():
            raise InputError(f"--output {target} lies under {parent}, which is a file")
    for source in inputs:
        source = Path(source).absolute()
        if source == target or target in source.parents:
            raise InputError(f"--output {target} would replace the input {source}; pick another")
    if target.is_file():
        raise InputError(f"--output {target} is a file; give a folder")
    if target.is_dir() and any(target.iterdir()):
        if not (target / MARKER).is_file():
            raise InputError(
                f"--output {target} is a folder this toolkit did not write and is not empty; "
                "pick another (nothing is deleted that we did not write)"
            )
        if not overwrite:
            raise InputError(
                f"--output {target} holds an earlier output; pass --overwrite to replace it"
            )
    return target


@contextmanager
def claim_output(target: str | Path, overwrite: bool = False, inputs: Iterable = ()):
    """Check the target (`check_output`) and hold its lock until the block ends; a second run
    claiming the same target meanwhile gets one InputError line."""
    target = check_output(target, overwrite, inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.with_name(f".{target.name}.lock")
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"--output {target} is being written by another run (lock {lock_path}); "
                "wait for it or pick another"
            ) from None
        reclaim_scratch(target)
        try:
            yield target
        finally:
            lock_path.unlink(missing_ok=True)
            fcntl.flock(lock, fcntl.LOCK_UN)


def reclaim_scratch(target: Path) -> list[Path]:
    """Remove what a killed run left beside `target` (its staging, scratch and swapped-out
    folders, named by `staging_dir` and `publish_dir`). Call holding the target's lock: no live
    run is using them then. Returns what was removed."""
    left = [
        path
        for kind in ("tmp", "work", "old")
        for path in target.parent.glob(f".{target.name}.{kind}-*")
        if path.is_dir()
    ]
    for path in left:
        shutil.rmtree(path, ignore_errors=True)
    return left


def mark(folder: Path) -> None:
    """Sign a finished folder as this toolkit's output (what --overwrite may replace)."""
    stamp = {"written_by": "mling-align", "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (folder / MARKER).write_text(json.dumps(stamp) + "\n", encoding="utf-8")


def publish_dir(staged: str | Path, target: str | Path, overwrite: bool = False) -> Path:
    """Move a finished staging folder to `target`; a previous output is replaced, never mixed.

    Only an output of ours is ever replaced (`check_output`, again at the last moment). The
    old folder is renamed aside before the new one takes its name, so at every instant
    `target` is either the old output or the new one, whole.
    """
    staged, target = Path(staged), Path(target)
    check_output(target, overwrite)
    mark(staged)
    if target.exists():
        trash = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, trash)
        os.replace(staged, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staged, target)
    return target


@contextmanager
def staged_output(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build the folder `target`: yields a staging folder beside it, published when the block
    ends normally (refused, as `check_output` says, before any work) and removed when it
    raises."""
    check_output(target, overwrite)
    staged = staging_dir(target)
    try:
        yield staged
        publish_dir(staged, target, overwrite)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
