"""The skeleton every evaluation entry point shares: config, data, evaluate, report.

An entry point supplies its own arguments, one function that reads and checks its data, and
one that evaluates every model on it and writes its report; `run_evaluator` does the rest the
same way for all of them: the model and embedding options, model names, bad input as one line
with exit code 2, and the closing lines (the table, notes, where the report is, how long it
took). Every input (data, images, each model's config and weights) is checked before anything
is written, and a run refused later leaves the output as it found it, but for an embedding
cache it filled.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mling.common.atomic import (
    MARKER,
    check_output,
    claim_output,
    mark,
    missing_folders,
    remove_if_empty,
    staging_dir,
)
from mling.common.cli import OneLineParser, environment_epilog, one_line_errors
from mling.common.errors import file_system_errors
from mling.common.hub import HUB_ENVIRONMENT, Source
from mling.common.storage import local_path
from mling.evaluation.embed import EmbedConfig, add_model_arguments, embed_config, model_names


@dataclass
class Outcome:
    """What an evaluation wrote: the report's paths, the table to print, notes to print."""

    paths: dict[str, Path]
    table: str
    notes: list[str] = field(default_factory=list)


# args -> the data, read and checked (images decoded once): every refusal of the data is here
Read = Callable[[argparse.Namespace], Any]
# (args, the data, {report name: where the model is}, embedding config) -> Outcome
Evaluate = Callable[[argparse.Namespace, Any, dict[str, Source], EmbedConfig], Outcome]


def _publish_reports(written: dict[str, Path], staged: Path, output: Path) -> dict[str, Path]:
    """Move the finished reports (`written`, in `staged`) into `output`. The JSON reports,
    which readers look for, go last, and the previous ones are removed first: between the
    moves, a kill leaves no report that looks whole. Returns `written` with the new paths."""
    names = sorted((p.name for p in staged.iterdir()), key=lambda name: name.endswith(".json"))
    for name in names:
        if name.endswith(".json"):
            (output / name).unlink(missing_ok=True)
    for name in names:
        os.replace(staged / name, output / name)
    staged.rmdir()
    return {kind: output / path.name for kind, path in written.items()}


def _release(output: Path, created: list[Path], marked: bool) -> None:
    """After a refusal: the output as it was, unless the run filled an embedding cache there
    (then the folder is ours, marked, and the next run reuses it)."""
    with contextlib.suppress(OSError):  # the refusal is what the user must see
        if marked or not (output / MARKER).is_file():
            return
        if any(path.is_file() and path.name != MARKER for path in output.rglob("*")):
            return
        shutil.rmtree(output / "cache", ignore_errors=True)  # empty folders alone
        (output / MARKER).unlink()
        remove_if_empty(created)


def _run(args: argparse.Namespace, read: Read, evaluate: Evaluate):
    """(Outcome, models): the checks, the data, the evaluation and its published report."""
    # Reports go into --output beside the embedding cache; a rerun reuses both. A file, or a
    # folder holding things we did not write, is refused: nothing of the user's is replaced.
    output = check_output(args.output, overwrite=True)
    cfg = embed_config(args)  # the cache: OUTPUT/cache unless --cache says otherwise
    models = model_names(args.model, args.name)  # each model's config and weights checked

    # data, read and checked before anything is written
    data = read(args)

    # evaluate, report. The folder is ours from the first byte written into it, so a run
    # killed halfway leaves one the next run may reuse (its cache included); reports are
    # written beside and moved in at the end (`_publish_reports`), with a lock. A run refused
    # here (a model giving NaN, a full disk) leaves the folder as it found it, but for the
    # embeddings it cached.
    created, marked = missing_folders(output), (output / MARKER).is_file()
    try:
        output.mkdir(parents=True, exist_ok=True)
        if not marked:
            mark(output)
        with claim_output(output / "report", overwrite=True):
            staged = args.output = staging_dir(output / "report")
            try:
                outcome = evaluate(args, data, models, cfg)
                outcome.paths = _publish_reports(outcome.paths, staged, output)
            finally:
                shutil.rmtree(staged, ignore_errors=True)  # once published: already gone
    except BaseException:
        _release(output, created, marked)
        raise
    return outcome, models


def run_evaluator(
    prog: str,
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    read: Read,
    evaluate: Evaluate,
    argv: list[str] | None,
) -> int:
    """Parse argv, read the data, evaluate, print the outcome; InputError anywhere, or the file
    system refusing a write (a full disk), -> one line, exit 2."""

    @one_line_errors(prog)
    def main(argv: list[str] | None) -> int:
        # config
        parser = OneLineParser(
            prog=prog, description=description, epilog=environment_epilog(HUB_ENVIRONMENT)
        )
        add_model_arguments(parser)
        add_arguments(parser)
        args = parser.parse_args(argv)
        args.output = local_path(
            args.output, "--output", "reports and the embedding cache are written in place"
        )
        given = args.output  # as the user wrote it: what the closing line names
        started = time.perf_counter()
        with file_system_errors(args.output):
            outcome, models = _run(args, read, evaluate)
        print(outcome.table)
        for note in outcome.notes:
            print(f"note: {note}")
        seconds = time.perf_counter() - started
        report = given / outcome.paths["md"].name
        print(f"{prog}: {len(models)} model(s) in {seconds:.1f} s; report at {report}")
        return 0

    return main(argv)
