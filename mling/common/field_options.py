"""Command-line options made from dataclass fields: one definition of a knob's flag, type,
default, help line and range, in the config it belongs to.

    @dataclass(frozen=True)
    class SamplingConfig:
        alpha: float = option(0.3, "smoothing exponent; 1 = natural", check=at_least(0))

    add_options(parser, SamplingConfig, "sampling")  # --alpha ALPHA ... (default: 0.3)
    sampling = from_args(SamplingConfig, args)       # out of range: one InputError line

The flag is the field's name with dashes (`max_bytes` -> `--max-bytes`) unless `flag=` names
another; a bool off by default is `--name`, one on by default `--no-name` (its help says what
the flag does); `X | None` is an optional X; `tuple[X, ...]` takes one or more values and,
without a default, is required. A float must be finite. A field without help is no option.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from mling.common.errors import InputError

Check = Callable[[Any], str | None]  # a value -> why it is refused ("must be at least 1") or None


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    **extra: Any,
) -> Any:
    """A dataclass field that is also an option. `factory` makes a fresh mutable default (a
    list); `extra`: flag, aliases (more spellings: `-K`), metavar, choices, check."""
    if not help:
        raise TypeError("an option needs a help line: without one, only the code knows it")
    metadata = {"help": help, **extra}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def at_least(low: float) -> Check:
    return lambda value: None if value >= low else f"must be at least {low}"


def above(low: float) -> Check:
    return lambda value: None if value > low else f"must be above {low}"


def between(low: float, high: float, *, open_high: bool = False) -> Check:
    """low <= value <= high, or low <= value < high with `open_high`."""
    if open_high:
        return lambda value: None if low <= value < high else f"must be {low} or more, under {high}"
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}"


def integer(text: str) -> int:
    """argparse type of an int field: 250000, 250_000 or 2.5e5 (a whole number)."""
    try:
        return int(text)
    except ValueError:
        number = float(text)  # a word: ValueError, which argparse reports with the flag
        if not number.is_integer():  # 2.5, inf, nan
            raise ValueError(text) from None
        return int(number)


def option_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.metadata.get("help")]


def flag_of(field: dataclasses.Field) -> str:
    name = field.name.replace("_", "-")
    return field.metadata.get("flag") or (f"--no-{name}" if field.default is True else f"--{name}")


def default_text(value: Any) -> str:
    """How --help shows a default: none, 250_000, 0.3, caption."""
    if value is None:
        return "none"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:_}"
    return str(value)


def add_options(parser: argparse.ArgumentParser, cls: type, title: str) -> argparse._ArgumentGroup:
    """One argument group, `title`, with an option per field of `cls` that has help."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for field in option_fields(cls):
        kind, many = _scalar(hints[field.name])
        flag, help_text = flag_of(field), field.metadata["help"]
        if kind is bool:
            action = "store_false" if field.default is True else "store_true"
            group.add_argument(flag, dest=field.name, action=action, help=_escape(help_text))
            continue
        required = field.default is dataclasses.MISSING
        choices = field.metadata.get("choices")  # shown as {a,b}, in place of a metavar
        metavar = field.metadata.get("metavar") or flag[2:].replace("-", "_").upper()
        if not required:
            help_text += f" (default: {default_text(field.default)})"
        group.add_argument(
            flag,
            *field.metadata.get("aliases", ()),
            dest=field.name,
            type=integer if kind is int else kind,
            nargs="+" if many else None,
            required=required,
            default=None if required else field.default,
            choices=choices,
            metavar=None if choices else metavar,
            help=_escape(help_text),
        )
    return group


def from_args(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """`cls` from the parsed options, each checked, and the fields in `given` (no options). A
    refused value is one InputError line, `--holdout 1.5: must be 0 or more, under 1` (the form
    of the training recipe's checks)."""
    values = {}
    for field in option_fields(cls):
        value = getattr(args, field.name)
        value = tuple(value) if isinstance(value, list) else value
        refuse(flag_of(field), value, field.metadata.get("check"))
        values[field.name] = value
    return cls(**values, **given)


def check_fields(config: Any) -> None:
    """Every option field of a made config against its check (for configs made from values
    other than parsed options: a `__post_init__` calls this)."""
    for field in option_fields(type(config)):
        refuse(flag_of(field), getattr(config, field.name), field.metadata.get("check"))


def refuse(flag: str, value: Any, check: Check | None = None) -> None:
    """InputError, one line in the form of every check here (`--holdout 1.5: must be 0 or
    more, under 1`), when a float is not finite or `check` refuses the value."""
    if value is None or isinstance(value, bool):
        return
    reason = (
        "must be a finite number" if isinstance(value, float) and not math.isfinite(value) else None
    )
    reason = reason or (check(value) if check else None)
    if reason:
        raise InputError(f"{flag} {value}: {reason}")


def refuse_args(args: argparse.Namespace, checks: dict[str, Check]) -> None:
    """`refuse` for options an entry point declares with argparse itself: each `--flag` of
    `checks` against its parsed value (`args.flag`), the first refused one as one InputError
    line."""
    for flag, check in checks.items():
        refuse(flag, getattr(args, flag.lstrip("-").replace("-", "_")), check)


def _scalar(hint: Any) -> tuple[type, bool]:
    """(the type of one value, whether the option takes several) of a field's annotation."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if typing.get_origin(hint) is tuple:
        return args[0], True
    if args and typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _scalar(args[0])
    return hint, False


def _escape(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help with %
