"""--help shows every option an entry point reads, each with a help line and its true default.

It names the environment variables the entry point reads too, and the vocabulary builder's
options are its config fields, each with its default shown."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re

import pytest

from mling.common.cli import DeprecatedFlag
from mling.common.field_options import default_text, flag_of
from mling.vocab import build_vocab

# entry point -> an environment variable it reads (through a library or itself), which its
# --help must name; None: it reads none
ENTRY_POINTS = {
    "mling.vocab.build_vocab": "AWS_ENDPOINT_URL",  # URLs in --input/--output
    "mling.evaluation.multi30k": "HF_HUB_OFFLINE",  # a hub id in --model
    "mling.evaluation.retrieval_set": "HF_HUB_OFFLINE",
    "mling.evaluation.zero_shot": "HF_HUB_OFFLINE",
    "mling.export": "HF_TOKEN",  # --push-to-hub
    "mling.synthetic.generate": None,
    "mling.emoji_set.build": "MLING_CACHE",
    "mling.filtering.pipeline": "AWS_ENDPOINT_URL",  # URLs in --input/--output
    "mling.train": "HF_HUB_OFFLINE",  # a hub id in --tokenizer or --init
}
# Config fields that are no option, each for a reason; a new field is an option or lands here.
INTERNAL_FIELDS = {"CorpusConfig.batch_lines"}  # a reader's batch size, not a user's choice
OPTION = re.compile(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$")  # "  --alpha ALPHA     p_l ~ ..."
STATED_DEFAULT = re.compile(r"\(default: (.+?)(?:\)|;|: |, )")


def run_help(module: str, monkeypatch, capsys) -> tuple[argparse.ArgumentParser, str]:
    """(the parser main() built, what `main(["--help"])` printed)."""
    shown = []
    print_help = argparse.ArgumentParser.print_help

    def recording(parser, file=None):
        shown.append(parser)
        print_help(parser, file)

    monkeypatch.setattr(argparse.ArgumentParser, "print_help", recording)
    monkeypatch.setenv("COLUMNS", "1000")  # one line per help, so a default is never cut
    with pytest.raises(SystemExit) as done:
        importlib.import_module(module).main(["--help"])
    assert done.value.code == 0
    return shown[-1], capsys.readouterr().out


def help_entries(text: str) -> dict[str, str]:
    """{option string: its help, whitespace collapsed} read from argparse's --help layout."""
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = OPTION.match(line)
        if match:
            current = [match.group(2) or ""]
            for invocation in match.group(1).split(", "):
                entries[invocation.split()[0]] = current
        elif current is not None and line.startswith("    "):
            current.append(line.strip())  # a help continued, or put under a long invocation
        else:
            current = None
    return {flag: " ".join(" ".join(parts).split()) for flag, parts in entries.items()}


@pytest.mark.parametrize(("module", "variable"), ENTRY_POINTS.items())
def test_every_option_is_in_help_with_a_help_line_and_its_true_default(
    module, variable, monkeypatch, capsys
):
    parser, text = run_help(module, monkeypatch, capsys)
    entries = help_entries(text)
    for action in parser._actions:
        if isinstance(action, DeprecatedFlag):
            continue  # an old spelling: hidden, and named on stderr when typed
        assert action.option_strings, f"{module}: positional {action.dest} (none expected)"
        assert action.help not in (None, "", argparse.SUPPRESS), f"{action.option_strings}"
        for flag in action.option_strings:
            assert entries.get(flag), f"{module}: {flag} has no help line in --help"
        stated = STATED_DEFAULT.search(entries[action.option_strings[0]])
        default = action.default  # SUPPRESS: a recipe field, shown with the dataclass's default
        if default == argparse.SUPPRESS:
            continue
        if stated and isinstance(default, int | float | str) and not isinstance(default, bool):
            if isinstance(default, str):
                assert stated.group(1) == default, f"{action.option_strings}: {stated.group(1)}"
            else:
                assert float(stated.group(1).replace("_", "")) == default, action.option_strings
    epilog = text.split("\nenvironment: ")[1:]
    assert bool(epilog) == bool(variable) and (not variable or variable in epilog[0]), module


def test_every_vocab_config_field_is_an_option_with_its_default_shown(monkeypatch, capsys):
    parser, text = run_help("mling.vocab.build_vocab", monkeypatch, capsys)
    entries = help_entries(text)
    by_dest = {action.dest: action for action in parser._actions}
    internal = set()
    for config, _ in build_vocab.CONFIGS.values():
        for field in dataclasses.fields(config):
            if not field.metadata.get("help"):
                internal.add(f"{config.__name__}.{field.name}")
                continue
            flag = flag_of(field)
            assert flag in by_dest[field.name].option_strings, (config.__name__, field.name)
            if isinstance(field.default, bool):  # the spelling says it: --lowercase, --no-...
                assert flag == ("--no-" if field.default else "--") + field.name.replace("_", "-")
            elif field.default is not dataclasses.MISSING:
                assert f"(default: {default_text(field.default)})" in entries[flag], flag
    assert internal == INTERNAL_FIELDS
    # the same, written out: what a user reads
    assert "(default: 250_000)" in entries["--vocab-size"]
    assert "(default: 1_000_000_000)" in entries["--max-bytes"]
    assert "(default: 0.5)" in entries["--max-alphabet-share"]
    assert "(default: none)" in entries["--lang-column"]
    assert entries["--no-exemplars"].startswith("leave out")


def test_help_entries_reads_argparse_layout():
    text = (
        "usage: x [-h] [--alpha ALPHA]\n\noptions:\n"
        "  -h, --help     show this help message and exit\n"
        "  --input INPUT [INPUT ...]\n"
        "                 files, globs\n"
        "                 and URLs\n"
        "  --quiet\n\n"
        "environment: AWS_ENDPOINT_URL.\n"
    )
    assert help_entries(text) == {
        "-h": "show this help message and exit",
        "--help": "show this help message and exit",
        "--input": "files, globs and URLs",
        "--quiet": "",
    }
