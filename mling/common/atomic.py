"""Outputs that appear whole or not at all, and never destroy what the toolkit did not write.

A file is written beside its target and renamed into place; a folder is built in a staging
folder beside its target (the same file system, so the rename is atomic) and swapped in. A
reader, or the next run, never sees half an output. Every writer in the toolkit goes through
these functions.

Before a folder is built, `claim_output` refuses what publishing it would destroy: a file, a
path under a file, one of the run's inputs (or a folder holding one), a non-empty folder
(with `overwrite`, only one that this toolkit published: it carries the MARKER file); and it
locks the target, so that a second run on the same output refuses instead of mixing with it.

An output on object storage (`s3://bucket/filtered`, any fsspec URL that writes) is built the
same way in a local staging folder, then uploaded: the WRITING marker first, every file, then
MARKER last (and WRITING removed). Object stores have no rename, so a reader can see a prefix
mid-upload; it tells by the markers (`check_published`), and this toolkit's readers refuse
such an output in one line. Foreign data (img2dataset shards) has neither marker and is read
as it is. Its staging, scratch and lock live under the system's temporary folder, in a local
stand-in named for the URL (`local_twin`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mling.common.disk import writing
from mling.common.errors import InputError
from mling.common.storage import URL, as_path, filesystem, is_url, remote_errors

MARKER = ".mling-output"  # inside every folder the toolkit publishes: what may be replaced
WRITING = ".mling-output.writing"  # on object storage, while an output of ours is uploaded


def write_atomic(path: str | Path, payload: bytes) -> Path:
    """Write bytes to a temp file beside `path`, then rename it into place. A write the file
    system refuses (a full disk) is one DiskError line naming `path`, which stays as it was."""
    path = Path(path)
    with writing(path):
        return _write_atomic(path, payload)


def _write_atomic(path: Path, payload: bytes) -> Path:
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
    """A new empty folder `.NAME.KIND-XXXX` beside `target`, for building it (or scratch);
    beside its local stand-in for a URL."""
    target = local_twin(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-", dir=target.parent))


def check_output(target: str | Path, overwrite: bool = False, inputs: Iterable = ()) -> Path:
    """The target folder, if publishing it destroys nothing; else one InputError line."""
    if is_url(target):
        return _check_remote_output(URL(str(target)), overwrite, inputs)
    target = Path(target).absolute()
    for parent in target.parents:
        if parent.is_file():
            raise InputError(f"--output {target} lies under {parent}, which is a file")
    for source in (s for s in inputs if not is_url(s)):
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
    local = local_twin(target)
    local.parent.mkdir(parents=True, exist_ok=True)
    lock_path = local.with_name(f".{local.name}.lock")
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"--output {target} is being written by another run (lock {lock_path}); "
                "wait for it or pick another"
            ) from None
        reclaim_scratch(local)
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
    if is_url(target):
        return _upload(Path(staged), URL(str(target)), overwrite)
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


def output_path(value: str | Path | URL) -> Path | URL:
    """An `--output` as given: a URL, or an absolute local path."""
    path = as_path(value)
    return path if isinstance(path, URL) else path.resolve()


def local_twin(target: str | Path | URL) -> Path:
    """Where a target's staging, scratch and lock live: beside it for a local path; for a URL, a
    stand-in named for it in the system's temporary folder (the same URL, the same stand-in, so
    a second run on it finds the lock and a killed run's scratch)."""
    if not is_url(target):
        return Path(target)
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"mling-{digest}"


def _check_remote_output(target: URL, overwrite: bool, inputs: Iterable) -> URL:
    """`check_output` on object storage: the same refusals, by listing the prefix."""
    if target.protocol in ("http", "https"):
        raise InputError(f"--output {target}: cannot write over http(s); give s3://, gs://, hf://")
    for source in (str(s).rstrip("/") for s in inputs if is_url(s)):
        if source == target.text or source.startswith(target.text + "/"):
            raise InputError(f"--output {target} would replace the input {source}; pick another")
    fs, path = filesystem(target.text)
    with remote_errors(target):
        if fs.isfile(path):
            raise InputError(f"--output {target} is an object (a file); give a folder (a prefix)")
        try:
            names = {fs.unstrip_protocol(n)[len(target.text) + 1 :] for n in fs.find(path)}
        except FileNotFoundError:
            raise InputError(
                f"--output {target}: the bucket does not exist (or is not visible with these "
                "credentials); create it first"
            ) from None
    if names and not names & {MARKER, WRITING}:
        raise InputError(
            f"--output {target} holds objects this toolkit did not write; pick another "
            "prefix (nothing is deleted that we did not write)"
        )
    if names and not overwrite:
        state = "an earlier output" if MARKER in names else "an output whose upload never finished"
        raise InputError(f"--output {target} holds {state}; pass --overwrite to replace it")
    return target


def _upload(staged: Path, target: URL, overwrite: bool) -> URL:
    """Publish a finished staging folder on object storage: WRITING first, then the files (an
    earlier output of ours removed), MARKER last, WRITING removed."""
    _check_remote_output(target, overwrite, ())
    mark(staged)
    fs, path = filesystem(target.text)
    with remote_errors(target):
        fs.pipe_file(f"{path}/{WRITING}", (staged / MARKER).read_bytes())
        earlier = [n for n in fs.find(path) if not n.endswith(f"/{WRITING}")]
        marker = [n for n in earlier if n.endswith(f"/{MARKER}")]
        if marker:  # readers see an upload in progress from here on
            fs.rm(marker)
        if earlier:
            fs.rm([n for n in earlier if n not in marker])
        files = sorted(p for p in staged.rglob("*") if p.is_file() and p.name != MARKER)
        for file in files:
            fs.put_file(str(file), f"{path}/{file.relative_to(staged).as_posix()}")
        fs.put_file(str(staged / MARKER), f"{path}/{MARKER}")
        fs.rm_file(f"{path}/{WRITING}")
    return target


def check_published(paths: Iterable[Path | URL]) -> None:
    """One InputError line when a path on object storage lies in an output of ours whose upload
    has not finished (WRITING without MARKER in its folder or the folder above: a filter's
    `webdataset/` is one level down). Local outputs appear by rename and need no check."""
    folders = dict.fromkeys(f for p in paths if isinstance(p, URL) for f in p.parents[:2])
    for folder in folders:
        if (folder / WRITING).exists() and not (folder / MARKER).exists():
            raise InputError(
                f"{folder} is an output of this toolkit that is still being uploaded, or whose "
                f"upload was killed ({WRITING} without {MARKER}); wait for it, or rerun the run "
                "that writes it"
            )
