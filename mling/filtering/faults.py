"""How a filter run that cannot finish ends: one line, and `--output` as it was.

Ctrl-C (SIGINT, which a terminal sends to the run and its workers) ends the run with
`filter.py: interrupted; nothing was written to OUT` and exit code 130 (128 + SIGINT, what a
shell reports for a process that SIGINT ended); a second Ctrl-C waits for the cleanup. A file
system that refuses a write (full, over a quota or a file-size limit, read-only, not
permitted) ends it with one line naming the path, and exit code 2. Either way the run's own
cleanup has removed its staging first, and the output is published whole or not at all
(`mling.common.atomic`), so what was at `--output` before is still there.

The file system's errors arrive in several forms: an OSError with its errno (Python's,
pyarrow's, one a worker raised), or an engine's exception that names the errno's text and the
file in its message (DuckDB's IOException); each is recognized here.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mling.common.errors import InputError, file_system_refusal, refusal_text

INTERRUPTED_EXIT = 130  # 128 + SIGINT


class Interrupted(Exception):
    """The run was stopped by Ctrl-C; the message is its one line."""


@dataclass
class Run:
    """What the one line says: the output, the folder being written and what it is for (named
    when the error names no file), whether the output was already published."""

    output: object
    writing: tuple[Path, str] | None = None  # (folder, "the scratch")
    published: bool = False
    interrupted: bool = False
    deferring: bool = False
    pending: bool = False

    def on_interrupt(self, signum: int, frame: object) -> None:
        if self.deferring:  # a publish: its renames finish first
            self.pending = True
            return
        if self.interrupted:  # a second Ctrl-C: the cleanup finishes
            return
        self.interrupted = True
        raise KeyboardInterrupt

    @contextmanager
    def uninterrupted(self) -> Iterator[None]:
        """Ctrl-C waits until the block ends (publishing the output: renames that must all
        happen), then stops the run; one that came before (its KeyboardInterrupt swallowed
        where Python ignores exceptions, such as fork's hooks) stops it first."""
        if self.interrupted:
            raise KeyboardInterrupt
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending:
            self.pending = False
            self.on_interrupt(signal.SIGINT, None)

    def interrupted_line(self) -> str:
        if self.published:
            return f"interrupted after {self.output} was written whole"
        return f"interrupted; nothing was written to {self.output}"


@contextmanager
def one_line_ending(output: object) -> Iterator[Run]:
    """Run the block that writes `output`. Ctrl-C raises Interrupted (its one line, for exit
    code 130); a file system's refusal, InputError naming the path (exit 2). Any other error
    goes on as it is."""
    run = Run(output)
    try:
        previous = signal.signal(signal.SIGINT, run.on_interrupt)
    except ValueError:  # not the main thread: Ctrl-C is Python's KeyboardInterrupt there
        previous = None
    try:
        yield run
    except BaseException as error:
        # DuckDB turns the KeyboardInterrupt it sees into its own "Query interrupted".
        if run.interrupted or isinstance(error, KeyboardInterrupt):
            raise Interrupted(run.interrupted_line()) from None
        found = file_system_refusal(error)
        if found is None:
            raise
        number, path = found
        folder, role = run.writing or (run.output, "--output")
        where = path or f"in {folder} ({role})"
        done = "after" if run.published else "nothing was written to"
        raise InputError(
            f"cannot write {where}: {done} {run.output}; {refusal_text(number)}"
        ) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
