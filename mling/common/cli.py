"""Command-line conventions every entry point shares.

Bad input ends in one line on stderr, `PROG: what is wrong and what to do`, and exit code 2;
so does a write the file system refuses (a full disk, a read-only folder: `file_system_error`);
a flag renamed for consistency keeps its old spelling for one release, with a one-line notice.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import sys
import typing
from collections.abc import Callable

from mling.common.errors import InputError, file_system_error

Main = Callable[[list[str] | None], int]


def one_line_errors(prog: str) -> Callable[[Main], Main]:
    """Decorate `main(argv) -> int` so that an InputError anywhere in it prints
    `PROG: message` on stderr and returns 2, instead of a traceback; so does a write the file
    system refuses (ENOSPC, EDQUOT, EFBIG, EROFS, EACCES), naming the file."""

    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def wrapped(argv: list[str] | None = None) -> int:
            try:
                return main(argv)
            except InputError as error:
                print(f"{prog}: {error}", file=sys.stderr)
                return 2
            except Exception as error:
                line = file_system_error(error)
                if line is None:
                    raise
                print(f"{prog}: {line}", file=sys.stderr)
                return 2

        return wrapped

    return decorate


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line: an InputError, which `one_line_errors` prints as
    `PROG: message` with exit 2, instead of the usage block. An unknown option names the closest
    real ones; `--help` and prefixes of options work as usual."""

    def error(self, message: str) -> typing.NoReturn:
        prefix = "unrecognized arguments: "
        if not message.startswith(prefix):
            raise InputError(message)
        unknown = message[len(prefix) :].split()
        flag = next((arg for arg in unknown if arg.startswith("-")), None)
        if flag is None:
            raise InputError(f"unexpected argument {unknown[0]!r}; see --help")
        name = flag.partition("=")[0]
        close = difflib.get_close_matches(name, self._option_string_actions, n=3, cutoff=0.7)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see --help"
        raise InputError(f"unknown option {name}{hint}")


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """`--overwrite`, as every entry point that publishes a folder spells it."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier output of this toolkit at --output (never anything else)",
    )


def environment_epilog(*sentences: str) -> str:
    """--help's last paragraph: the environment variables an entry point reads, each group
    in one sentence (STORAGE_ENVIRONMENT, HUB_ENVIRONMENT, its own)."""
    return "environment: " + "; ".join(sentences) + "."


class DeprecatedFlag(argparse.Action):
    """An old spelling, hidden from --help (it says which spelling to use when typed)."""


def deprecated_flag(new: str, append: bool = False) -> type[argparse.Action]:
    """An argparse action for an old flag spelling: it stores (or appends) like the new one and
    says once on stderr which spelling to use."""

    class Deprecated(DeprecatedFlag):
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"{parser.prog}: {option_string} is deprecated; use {new}", file=sys.stderr)
            if append:
                values = [*(getattr(namespace, self.dest, None) or []), values]
            setattr(namespace, self.dest, values)

    return Deprecated


def deprecation_notice(prog: str, old: str, new: str) -> None:
    """The same one line, for names that argparse does not see (recipe keys, module names)."""
    print(f"{prog}: {old} is deprecated; use {new}", file=sys.stderr)
