"""Bad input, named in one line: the one error type every part raises for it."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input named in one line: a missing path, an unknown column, an unreadable shard.

    Entry points turn it into that line on stderr and exit code 2 (`mling.common.cli`).
    """
