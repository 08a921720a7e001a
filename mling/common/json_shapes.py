"""JSON a reader expects, checked in one line: what is where, what it must be, what it is.

Every reader of a JSON or JSONL file the user gives (caption files, class prompts, pins, the
state files of a `datasets` folder) checks each value it uses before using it, so a `5` where a
list belongs is one InputError line, never a TypeError from deep inside:

    images = expect(data.get("images"), list, f'{path}: "images"', "a list of image entries")
    # -> 'karpathy.json: "images" must be a list of image entries, not a number (5)'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mling.common.errors import InputError

_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}


def json_kind(value: Any) -> str:
    """How a JSON value is named in errors: "an object", "a number (5)", "null"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{value}".lower()
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value[:20]!r})"
    return _NAMES.get(type(value), type(value).__name__)


def expect(value: Any, kind: type | tuple[type, ...], where: str, expected: str) -> Any:
    """`value` when it is of `kind` (bool is no number here), else one InputError line:
    `WHERE must be EXPECTED, not KIND`."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    is_bool = isinstance(value, bool) and bool not in kinds
    if not isinstance(value, kinds) or is_bool:
        raise InputError(f"{where} must be {expected}, not {json_kind(value)}")
    return value


def expect_texts(value: Any, where: str) -> list[str]:
    """A string or a list of strings, as a list: captions, templates, class names."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError(f"{where} must be a string or a list of strings, not {json_kind(value)}")
    return values


def read_json(path: str | Path, what: str, hint: str = "") -> Any:
    """The JSON in a file, or one InputError line naming it (missing, unreadable, not JSON,
    not UTF-8). `what` names the file ("a Karpathy split file"); `hint` says what to do."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} does not exist; {hint or f'give {what}'}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; give {what}") from None
    except ValueError as error:  # not JSON (JSONDecodeError), not UTF-8 (UnicodeDecodeError)
        reason = getattr(error, "msg", None) or "not UTF-8"
        tail = f"; {hint}" if hint else ""
        raise InputError(f"{path} is not {what} ({reason}){tail}") from None
