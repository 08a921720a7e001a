"""Outputs that appear whole or not at all.

A file is written beside its target and renamed into place; a folder is built in a staging
folder beside its target (the same file system, so the rename is atomic) and swapped in. A
reader, or the next run, never sees half an output. Every writer in the toolkit goes through
these three functions.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


def publish_dir(staged: str | Path, target: str | Path) -> Path:
    """Move a finished staging folder to `target`; a previous output is replaced, never mixed.

    The old folder is renamed aside before the new one takes its name, so at every instant
    `target` is either the old output or the new one, whole.
    """
    staged, target = Path(staged), Path(target)
    if target.exists():
        trash = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, trash)
        os.replace(staged, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staged, target)
    return target


@contextmanager
def staged_output(target: str | Path) -> Iterator[Path]:
    """Build the folder `target`: yields a staging folder beside it, published when the block
    ends normally and removed when it raises."""
    staged = staging_dir(target)
    try:
        yield staged
        publish_dir(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
