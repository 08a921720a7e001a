"""A file system that refuses a write (full, read-only, over a quota or a file-size limit),
named in one line: the path and what to do, exit code 2, never a traceback.

Writers wrap what they write in `writing(path)`, which names the output being written (a
checkpoint, `metrics.jsonl`, a model folder); `mling.common.cli.one_line_errors` turns any
other such error that reaches an entry point into the same line, naming the file the system
reported. safetensors and the Rust tokenizers report these errors in their own exception
types, with the system's `(os error N)` in the message: they are recognized too.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mling.common.errors import InputError

# What the file system answers when it will not take more bytes here, whatever the program.
REFUSED_WRITES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is larger than the file-size limit (ulimit -f) allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how Rust libraries (safetensors) report one


class DiskError(InputError):
    """A write the file system refused, named in one line."""


def refused_write(error: BaseException) -> int | None:
    """The errno of a write the file system refused, or None for any other error."""
    code = getattr(error, "errno", None) if isinstance(error, OSError) else None
    if code is None:
        found = OS_ERROR.search(str(error))
        code = int(found.group(1)) if found else None
    return code if code in REFUSED_WRITES else None


def disk_error(error: BaseException, path: str | Path | None = None) -> DiskError | None:
    """The one line for a refused write (`path`: what was being written; else the file the
    system named), or None when `error` is something else."""
    code = refused_write(error)
    if code is None:
        return None
    path = path or getattr(error, "filename", None) or "a file"
    return DiskError(
        f"cannot write {path}: {REFUSED_WRITES[code]} ({errno.errorcode[code]}: "
        f"{os.strerror(code)}); free space, raise the limit or write elsewhere"
    )


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Name `path` in the one line if the file system refuses what the block writes."""
    try:
        yield
    except Exception as error:
        line = disk_error(error, path)
        if line is None:
            raise
        raise line from None
