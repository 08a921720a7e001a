"""The recipe on the command line: every field an option, grouped by section, its help the field's.

    --image-size 64 --lr 1e-3 --flip false --pad-to-max-length --block-repeats 1,1,2,2,3,3,1
    --freeze image --freeze text (or --freeze image,text) --column TEXT=caption

Options take the values a preset takes and go through the same reading and checks
(`load_recipe`), so a flag and a YAML key can never disagree. A boolean alone means true. A
list is a comma list, repeatable. An option left out is not an override: the preset's value
stands, and `--help` shows the dataclass default beside each option.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from mling.common.cli import deprecated_flag
from mling.training.recipe import FIELDS, SECTIONS, recipe_flag

# The deprecated spellings users still type: old flag -> the field it sets.
DEPRECATED_FLAGS = {"--columns": "columns"}


def _metavar(kind: type, choices: tuple | None) -> str:
    if choices:
        return "{" + ",".join(choices) + "}"
    if typing.get_origin(kind) is list:
        return f"{_metavar(typing.get_args(kind)[0], None)},..."
    return {int: "INT", float: "X", bool: "{true,false}"}.get(kind, "TEXT")


def _shown_default(item: dataclasses.Field) -> str:
    """The default as a user would type it: 1,2,2 for a list, true for True, '' for empty."""
    if item.default_factory is not dataclasses.MISSING:
        return ",".join(map(str, item.default_factory())) or "none"
    if isinstance(item.default, bool):
        return str(item.default).lower()
    return str(item.default) if item.default != "" else "''"


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """One argument group per recipe section, one option per field, in the dataclass's order.
    Values are stored as given (strings); `recipe_overrides` collects the ones given."""
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(
            f"{section} (preset section `{section}:`)", (cls.__doc__ or "").strip()
        )
        for item in dataclasses.fields(cls):
            _, _, kind = FIELDS[item.name]
            choices = item.metadata.get("choices")
            help_text = f"{item.metadata['help']} (default: {_shown_default(item)})"
            options = {
                "dest": item.name,
                "default": argparse.SUPPRESS,
                "metavar": item.metadata.get("metavar") or _metavar(kind, choices),
                "help": help_text.replace("%", "%%"),
            }
            if kind is bool:
                options.update(nargs="?", const="true")
            elif typing.get_origin(kind) is list:
                options.update(action="append")
            group.add_argument(recipe_flag(item.name), **options)
    for old, name in DEPRECATED_FLAGS.items():
        parser.add_argument(
            old,
            dest=name,
            default=argparse.SUPPRESS,
            action=deprecated_flag(recipe_flag(name), append=True),
            help=argparse.SUPPRESS,  # said once on stderr when used
        )


def recipe_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The recipe fields given on the command line -> {field: value}, lists flattened from
    repeated and comma-separated values; what load_recipe takes as overrides."""
    overrides: dict[str, object] = {}
    for name, (_, _, kind) in FIELDS.items():
        if not hasattr(args, name):
            continue
        value = getattr(args, name)
        if typing.get_origin(kind) is list:
            value = [part.strip() for given in value for part in given.split(",") if part.strip()]
        overrides[name] = value
    return overrides
