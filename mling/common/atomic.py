"""Outputs that appear whole or not at all, and never destroy what the toolkit did not write.

A file is written beside its target and renamed into place; a folder is built in a staging
folder beside its target (the same file system, so the rename is atomic) and swapped in. A
reader, or the next run, never sees half an output. Every writer in the toolkit goes through
these functions.

Before a folder is built, `claim_output` refuses what publishing it would destroy: a file, a
path under a file, one of the run's inputs (or a folder holding one), a non-empty folder
(with `overwrite`, only one that this toolkit published: it carries the MARKER file); and it
locks the target, so that a second run on the same output refuses instead of mixing with it.

A scratch folder the user names (the filter's `--work-dir`) is claimed the same way
(`claim_scratch`): refused when it holds anything we did not write, locked, marked with the
SCRATCH file, and emptied of what the run wrote there when the run ends well.

An output on object storage (`s3://bucket/filtered`, any fsspec URL that writes) is built the
same way in a local staging folder, then uploaded: the WRITING marker first, every file, then
MARKER last (and WRITING removed). Object stores have no rename, so a reader can see a prefix
mid-upload; it tells by the markers (`check_published`), and this toolkit's readers refuse
such an output in one line. Foreign data (img2dataset shards) has neither marker and is read
as it is. Its staging, scratch and lock live under the system's temporary folder, in a local
stand-in named for the URL (`local_twin`).
"""

from __future__ import annotations

import contextlib
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

from mling.common.errors import InputError, file_system_errors
from mling.common.storage import URL, as_path, filesystem, is_url, remote_errors

MARKER = ".mling-output"  # inside every folder the toolkit publishes: what may be replaced
WRITING = ".mling-output.writing"  # on object storage, while an output of ours is uploaded
SCRATCH = ".mling-scratch"  # inside a scratch folder a run claimed: all it holds is that run's


def write_atomic(path: str | Path, payload: bytes) -> Path:
    """Write bytes to a temp file beside `path`, then rename it into place. A write the file
    system refuses (a full disk) is one InputError line naming `path`, which stays as it was."""
    path = Path(path)
    with file_system_errors(path):
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
    except OSError as error:  # a full disk, a size limit: name the file, not the descriptor
        Path(tmp).unlink(missing_ok=True)
        if error.filename is None:
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def missing_folders(folder: Path) -> list[Path]:
    """The folders that `folder.mkdir(parents=True)` would create, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def remove_if_empty(folders: Iterable[Path]) -> None:
    """Remove each folder (deepest first) that is empty: what a refused run had created."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone: anything in it is not ours to remove
            return


def staging_dir(target: str | Path, kind: str = "tmp") -> Path:
    """A new empty folder `.NAME.KIND-XXXX` beside `target`, for building it (or scratch);
    beside its local stand-in for a URL."""
    target = local_twin(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-", dir=target.parent))


def check_output(
    target: str | Path,
    overwrite: bool = False,
    inputs: Iterable = (),
    *,
    flag: str = "--output",
    marker: str = MARKER,
) -> Path:
    """The target folder, if publishing it destroys nothing; else one InputError line naming
    `flag`. A non-empty folder is ours when it holds `marker` (SCRATCH for a scratch folder)."""
    if is_url(target):
        return _check_remote_output(URL(str(target)), overwrite, inputs)
    target = Path(target).absolute()
    for parent in target.parents:
        if parent.is_file():
            raise InputError(f"{flag} {target} lies under {parent}, which is a file")
    for source in (s for s in inputs if not is_url(s)):
        source = Path(source).absolute()
        if source == target or target in source.parents:
            raise InputError(f"{flag} {target} would replace the input {source}; pick another")
    if target.is_file():
        raise InputError(f"{flag} {target} is a file; give a folder")
    if target.is_dir() and any(target.iterdir()):
        if not (target / marker).is_file():
            raise InputError(
                f"{flag} {target} is a folder this toolkit did not write and is not empty; "
                "pick another (nothing is deleted that we did not write)"
            )
        if not overwrite:
            raise InputError(
                f"{flag} {target} holds an earlier output; pass --overwrite to replace it"
            )
    return target


@contextmanager
def _locked(local: Path, busy: str) -> Iterator[Path]:
    """Hold the lock `.NAME.lock` beside `local` until the block ends; when another process
    holds it, one InputError line: `busy` with {lock} filled in. The kernel drops the lock of a
    process that dies, so a killed run never blocks the next one."""
    created = missing_folders(local.parent)
    local.parent.mkdir(parents=True, exist_ok=True)
    lock_path = local.with_name(f".{local.name}.lock")
    try:
        with open(lock_path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(busy.format(lock=lock_path)) from None
            try:
                yield lock_path
            finally:
                lock_path.unlink(missing_ok=True)
                fcntl.flock(lock, fcntl.LOCK_UN)
    except BaseException:
        remove_if_empty(created)  # a refused run leaves no folder it made
        raise


@contextmanager
def claim_output(target: str | Path, overwrite: bool = False, inputs: Iterable = ()):
    """Check the target (`check_output`) and hold its lock until the block ends; a second run
    claiming the same target meanwhile gets one InputError line."""
    target = check_output(target, overwrite, inputs)
    local = local_twin(target)
    busy = f"--output {target} is being written by another run (lock {{lock}}); wait for it or pick another"
    with _locked(local, busy):
        reclaim_scratch(local)
        yield target


def check_scratch(
    folder: str | Path, flag: str, inputs: Iterable = (), apart: Iterable[tuple[str, Path]] = ()
) -> Path:
    """The scratch folder, if a run may claim it (`claim_scratch`); else one InputError line:
    a file, under a file, an input or a folder holding one, a folder holding anything we did
    not write (not empty, no SCRATCH marker), or one that is, lies in or holds a folder of
    `apart` (what it names: `("--output", path)`, `("the input", path)`)."""
    folder = check_output(folder, True, inputs, flag=flag, marker=SCRATCH)
    for name, path in apart:
        path = Path(path).absolute()
        where = (
            "is"
            if path == folder
            else "lies in"
            if path in folder.parents
            else "holds"
            if folder in path.parents
            else ""
        )
        if where:
            raise InputError(f"{flag} {folder} {where} {name} {path}; pick a folder apart from it")
    return folder


@contextmanager
def claim_scratch(
    folder: str | Path,
    flag: str = "--work-dir",
    inputs: Iterable = (),
    apart: Iterable[tuple[str, Path]] = (),
) -> Iterator[Path]:
    """Claim a scratch folder the user names as an output is claimed: checked (`check_scratch`),
    locked until the block ends (a second run gets one InputError line), emptied of what a
    failed or killed run left there, and marked (SCRATCH). When the block ends normally, all
    the run wrote there is removed, and the folders a run made for it too; when it raises, it
    stays, its marker saying so, for the next run on it to empty (or for a person to delete)."""
    apart = list(apart)
    folder = check_scratch(folder, flag, inputs, apart)
    busy = f"{flag} {folder} is in use by another run (lock {{lock}}); wait for it or pick another"
    made = [path for path in (folder, *folder.parents) if not path.exists()]
    with _locked(folder, busy):
        check_scratch(folder, flag, inputs, apart)  # unchanged since, now that it is ours
        made += [Path(path) for path in _stamped(folder).get("made", []) if Path(path) not in made]
        _empty(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _stamp(folder, f"in use by process {os.getpid()}", made)
        try:
            yield folder
        except BaseException:
            _stamp(
                folder, "left by a run that failed or was stopped; the next run empties it", made
            )
            raise
        _empty(folder)
    for path in made:  # the folder, and the folders above it that a run made
        with contextlib.suppress(OSError):  # one that holds something now stays
            path.rmdir()


def _stamp(folder: Path, state: str, made: list[Path]) -> None:
    """The SCRATCH marker: whose folder this is, in what state, and the folders a run made for
    it (removed by the run that empties it after success)."""
    stamp = {
        "written_by": "mling-align",
        "scratch": state,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "made": [str(path) for path in made],
    }
    (folder / SCRATCH).write_text(json.dumps(stamp) + "\n", encoding="utf-8")


def _stamped(folder: Path) -> dict:
    """The SCRATCH marker a run left in `folder` ({} when none, or unreadable)."""
    try:
        stamp = json.loads((folder / SCRATCH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _empty(folder: Path) -> None:
    """Remove everything in a scratch folder of ours (its marker too)."""
    if folder.is_dir():
        for path in folder.iterdir():
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


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
    created = missing_folders(local_twin(target).parent)
    staged = staging_dir(target)
    try:
        yield staged
        publish_dir(staged, target, overwrite)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        remove_if_empty(created)  # a refused run leaves no folder it made
        raise
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
