"""Bad input ends in one line: the check every bad-input test shares.

An entry point refusing its input prints `PROG: what is wrong and what to do` on stderr and
nothing else there, apart from the notices below: each named, each documented in
docs/bad-input.md. A traceback, a usage block or a second error line fails the check.
"""

from __future__ import annotations

import re

# Lines an entry point may print on stderr before its one line, each for a reason.
NOTICES = {
    "deprecation": re.compile(r"^\S+: .+ is deprecated; use .+$"),  # an old spelling, said once
    "layout": re.compile(r"^\S+: input layout \S+, recognized from its columns$"),
    "stage timing": re.compile(r"^filter\.py: [\w-]+ +[\d.]+ s$"),  # the filter without --quiet
    # an evaluator's log of the models it ran before a refusal (a later one's NaN): each model
    # on its device, then indented lines (its embeddings, their cache, its scores)
    "evaluation progress": re.compile(r"^(\S+: .+ on (cpu|cuda|mps)[:\d]*|  (?!File \").+)$"),
    # a training run that fails after it started: what it is, then its points (batch-job logs)
    "run summary": re.compile(r"^train\.py: [\d.]+M parameters \(.+ pairs, .+ process\(es\) .+$"),
    "training point": re.compile(r"^train\.py: step \d+ loss \S+ temperature \S+ lr .+ pairs/s$"),
    "allowed recipe change": re.compile(r"^train\.py: --resume with a changed recipe: .+ → .+$"),
}


def error_line(capsys, prog: str, says: str = "") -> str:
    """The one line `prog` printed on stderr (it must contain `says`); every other stderr line
    must be a named notice. Returns the line."""
    lines = capsys.readouterr().err.strip().splitlines()
    return check_one_line(lines, prog, says)


def check_one_line(lines: list[str], prog: str, says: str = "") -> str:
    """The same check on stderr's lines (from a subprocess, say)."""
    assert lines, f"{prog} printed nothing on stderr"
    *before, last = lines
    assert last.startswith(f"{prog}: "), lines
    assert says in last, f"{says!r} not in {last!r}"
    for line in before:
        assert any(notice.match(line) for notice in NOTICES.values()), (
            f"{prog} printed more than one line on stderr: {line!r} is no named notice"
        )
    return last
