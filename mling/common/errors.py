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


def first_line(error: BaseException) -> str:
    """What an error says, in one line: its message's first line, or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
# Libraries that write in C or Rust name the errno in their message only: pyarrow and
# tokenizers by number, DuckDB by its text (`Could not write file "/x.parquet": File too large`).
_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]|\(os error (\d+)\)", re.IGNORECASE)
_NAMED_FILE = re.compile(r"""file \\?["']([^"'\\]+)\\?["']""")


def file_system_refusal(error: BaseException) -> tuple[int, str | None] | None:
    """(errno, the path it names or None) when the file system refused (FILE_SYSTEM_ERRORS),
    whichever library raised it; None for any other error."""
    if isinstance(error, OSError) and error.errno in FILE_SYSTEM_ERRORS:
        return error.errno, error.filename
    text = str(error)
    found = _ERRNO_IN_TEXT.search(text)
    code = int(found.group(1) or found.group(2)) if found else None
    if code is None:
        code = next((c for c in FILE_SYSTEM_ERRORS if os.strerror(c) in text), None)
    if code not in FILE_SYSTEM_ERRORS:
        return None
    named = _NAMED_FILE.search(text)
    return code, getattr(error, "filename", None) or (named.group(1) if named else None)


def refusal_text(code: int) -> str:
    """`No space left on device (ENOSPC); free some space, or write elsewhere`."""
    return f"{os.strerror(code)} ({errno.errorcode[code]}); {FILE_SYSTEM_ERRORS[code]}"


def file_system_error(error: BaseException, where: str | Path | None = None) -> InputError | None:
    """The InputError line for an error the file system raised (ENOSPC, EDQUOT, EFBIG, EROFS,
    EACCES, EPERM), naming the path it names, else `where` (what was being written); None for
    any other error. `PATH: No space left on device (ENOSPC); free some space, or write
    elsewhere`."""
    found = file_system_refusal(error)
    if found is None:
        return None
    code, path = found
    return InputError(f"{path or where or 'a file'}: {refusal_text(code)}")


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
