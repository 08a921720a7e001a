"""The skeleton every evaluation entry point shares: config, data, evaluate, report.

An entry point supplies its own arguments and one function that reads its data, evaluates
every model on it and writes its report; `run_evaluator` does the rest the same way for all of
them: the model and embedding options, model names, bad input as one line with exit code 2,
and the closing lines (the table, notes, where the report is, how long it took).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mling.common.atomic import check_output, claim_output, mark, staging_dir
from mling.common.cli import OneLineParser, environment_epilog, one_line_errors
from mling.common.hub import HUB_ENVIRONMENT, Source
from mling.common.storage import local_path
from mling.evaluation.embed import EmbedConfig, add_model_arguments, embed_config, model_names


@dataclass
class Outcome:
    """What an evaluation wrote: the report's paths, the table to print, notes to print."""

    paths: dict[str, Path]
    table: str
    notes: list[str] = field(default_factory=list)


# (args, {report name: where the model is}, embedding config) -> Outcome
Evaluate = Callable[[argparse.Namespace, dict[str, Source], EmbedConfig], Outcome]


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


def run_evaluator(
    prog: str,
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    evaluate: Evaluate,
    argv: list[str] | None,
) -> int:
    """Parse argv, evaluate, print the outcome; InputError anywhere -> one line, exit 2."""

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
        # Reports go into --output beside the embedding cache; a rerun reuses both. A file, or
        # a folder holding things we did not write, is refused: nothing of the user's is replaced.
        output = check_output(args.output, overwrite=True)
        cfg = embed_config(args)  # the cache: OUTPUT/cache unless --cache says otherwise
        models = model_names(args.model, args.name)

        # data, evaluate, report. The folder is ours from the first byte written into it, so a
        # run killed halfway leaves one the next run may reuse (its cache included); reports
        # are written beside and moved in at the end (`_publish_reports`), with a lock.
        output.mkdir(parents=True, exist_ok=True)
        mark(output)
        with claim_output(output / "report", overwrite=True):
            args.output = staging_dir(output / "report")
            outcome = evaluate(args, models, cfg)
            outcome.paths = _publish_reports(outcome.paths, args.output, output)
        print(outcome.table)
        for note in outcome.notes:
            print(f"note: {note}")
        seconds = time.perf_counter() - started
        report = given / outcome.paths["md"].name
        print(f"{prog}: {len(models)} model(s) in {seconds:.1f} s; report at {report}")
        return 0

    return main(argv)
