"""Bad input, named in one line: the one error type every part raises for it, and the file
system's refusals (a full disk, a read-only folder, a file-size limit) turned into one."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class InputError(ValueError):
    """Bad input named in one line: a missing path, an unknown column, an unreadable shard.

    Entry points turn it into that line on stderr and exit code 2 (`mling.common.cli`).
    """


# The file system saying no, and what to do about it. Not a bug of ours: one line, exit 2.
FILE_SYSTEM_ERRORS = {
    errno.ENOSPC: "free some space, or write elsewhere",
    errno.EDQUOT: "free some of your quota, or write elsewhere",
    errno.EFBIG: "a file outgrew the size limit (`ulimit -f`, or the file system's); raise it, "
    "or write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "no permission; give a path you may use",
    errno.EPERM: "no permission; give a path you may use",
}
# libraries that write in C or Rust (pyarrow, tokenizers) name the errno in their message only
_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]|\(os error (\d+)\)", re.IGNORECASE)


def file_system_error(error: BaseException, where: str | Path | None = None) -> InputError | None:
    """The InputError line for an error the file system raised (ENOSPC, EDQUOT, EFBIG, EROFS,
    EACCES, EPERM), naming the path it names, else `where` (what was being written); None for
    any other error. `PATH: No space left on device (ENOSPC); free some space, or write
    elsewhere`."""
    code = getattr(error, "errno", None)
    if code is None:
        found = _ERRNO_IN_TEXT.search(str(error))
        code = int(found.group(1) or found.group(2)) if found else None
    if code not in FILE_SYSTEM_ERRORS:
        return None
    path = getattr(error, "filename", None) or where or "a file"
    return InputError(
        f"{path}: {os.strerror(code)} ({errno.errorcode[code]}); {FILE_SYSTEM_ERRORS[code]}"
    )


@contextmanager
def file_system_errors(where: str | Path | None = None) -> Iterator[None]:
    """Turn the file system's refusals inside the block into one InputError line
    (`file_system_error`); `where` is named when the error names no path (a write() on an
    open file: the output being written)."""
    try:
        yield
    except Exception as error:
        if isinstance(error, InputError):
            raise
        converted = file_system_error(error, where)
        if converted is None:
            raise
        raise converted from None
