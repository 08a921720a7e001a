"""`make demo`: the whole ALIGN recipe on a laptop, through the entry points a user runs.

    python mling/demo.py --output demo-output [--pairs 20000] [--steps N] [--seed 0]

Each stage runs the real entry point in a subprocess (its module, the same `main` that the
script named below calls), on the output of the stage before:

    1 data/synthetic.py                  OUT/synthetic/  noisy multilingual pairs + Multi30k-layout test set
    2 tokenizer_training/build_vocab.py  OUT/vocab/      WordPiece vocabulary on the corpus's text
    3 data/filter.py                     OUT/filtered/   kept pairs, rejected pairs, filter report
    4 (English subset)                   OUT/filtered-en/ the kept pairs whose caption is English
    5 mling/train.py, three runs at once OUT/{mling,en,mling-unfiltered}/ (model/ inside each)
    6 eval/multi30k.py                   OUT/eval/report.{json,md,csv,png}
    7 the final report                   OUT/report.{md,png,json}

The three models train for the same steps: `mling` on the filtered pairs in all languages,
`en` on the English ones only (as ALIGN-EN), `mling-unfiltered` on the corpus as generated.
Each stage's own output goes to OUT/logs/STAGE.log; the terminal shows one line per stage and
a progress bar per training run. Sizes and steps are options, so a GPU user can run it bigger.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from mling.common.cli import OneLineParser, one_line_errors
from mling.common.field_options import above, at_least, between, refuse_args
from mling.common.provenance import code_state
from mling.common.stages import StageRunner, entry_point
from mling.demo_report import MODELS, write_demo_report

STAGES = 7
# What the demo's numbers measure (mling/common/provenance.py): a change here after the commit
# its report recorded makes the README's table stale (`python -m benchmarks.update_docs --check`).
MEASURED_MODULES = (
    "mling/demo.py",
    "mling/demo_report.py",
    "mling/synthetic/",
    "mling/vocab/",
    "mling/filtering/",
    "mling/train.py",
    "mling/training/",
    "mling/evaluation/",
    "mling/configs/demo.yaml",
)


# the range of every numeric option (the stages check theirs again, but only when they start)
OPTION_CHECKS = {
    "--pairs": at_least(1),
    "--test-images": at_least(1),
    "--seed": at_least(0),
    "--steps": at_least(1),
    "--vocab-size": at_least(100),
    "--filter-vocabulary": above(0),
    "--eval-radius": between(0, 64),
    "--parallel": at_least(1),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("demo-output"))
    parser.add_argument("--pairs", type=int, default=20_000, help="rows in the noisy corpus")
    parser.add_argument("--test-images", type=int, default=1000, help="Multi30k-layout test set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps", type=int, help="optimizer steps per model (default: the preset's max_steps)"
    )
    parser.add_argument("--config", default="demo", help="training preset (mling/configs)")
    parser.add_argument("--vocab-size", type=int, default=8000, help="WordPiece vocabulary")
    parser.add_argument(
        "--filter-vocabulary",
        type=float,
        default=0.3,
        help="the filter's K (most frequent unigrams and bigrams kept), per corpus pair: the "
        "paper's 100M is for 1.8B pairs; this corpus repeats a small vocabulary, so K must be "
        "small for the rare-token filter to see the garbage tokens",
    )
    parser.add_argument(
        "--eval-radius",
        type=int,
        default=2,
        help="pHash bits for the near-duplicate filter: at 64 px, scenes of the same layout "
        "hash close together, so the default 6 would drop clean pairs",
    )
    parser.add_argument(
        "--parallel", type=int, default=3, help="training runs at once (they share the cores)"
    )
    parser.add_argument("--device", default="auto", help="evaluation device: auto, cpu, cuda")
    return parser.parse_args(argv)


def english_subset(filtered: Path, output: Path) -> int:
    """The kept pairs whose caption is English (the corpus's own label), as pair shards."""
    import pyarrow.dataset as ds

    from mling.pairs.shards import write_pair_shards

    table = ds.dataset(sorted(filtered.glob("part-*.parquet")), format="parquet").to_table(
        filter=ds.field("synthetic_language") == "en"
    )
    write_pair_shards(table.to_batches(), output, overwrite=True)  # the demo's own folder
    return table.num_rows


def train_all(
    stages: StageRunner,
    runs: dict[str, Path],
    args: argparse.Namespace,
    out: Path,
    flags: dict[str, list[str]] | None = None,
) -> float:
    """Train the models `parallel` at a time, threads split between them; bars from metrics.
    flags: extra train.py flags per run name (recipe fields on top of the preset)."""
    started = time.perf_counter()
    threads = max(1, (os.cpu_count() or 1) // min(args.parallel, len(runs)))
    together = []
    for name, data in runs.items():
        argv = ["--config", args.config, "--train-data", str(data)]
        argv += ["--tokenizer", str(out / "vocab"), "--output-dir", str(out / name)]
        argv += ["--max-steps", str(args.steps), "--seed", str(args.seed), "--overwrite"]
        command = entry_point("mling/train.py", *argv, *(flags or {}).get(name, []))
        together.append(stages.stage(f"train-{name}", command, {"OMP_NUM_THREADS": str(threads)}))
    title = f"mling/train.py --config {args.config} --max-steps {args.steps}, x{len(runs)}"
    progress = TrainingProgress({name: out / name for name in runs}, args.steps)
    try:
        stages.run_together(together, title, at_once=args.parallel, watch=progress.update)
    finally:
        progress.close()
    return time.perf_counter() - started


class TrainingProgress:
    """A bar per training run, read from its metrics.jsonl; in a log (CI, `make demo > log`),
    one status line every 30 s instead."""

    def __init__(self, runs: dict[str, Path], steps: int) -> None:
        from tqdm import tqdm

        self.runs, self.steps = runs, steps
        self.terminal = sys.stderr.isatty()
        self.started = self.last_line = time.perf_counter()
        self.done = {name: 0 for name in runs}
        self.bars = {
            name: tqdm(total=steps, desc=f"      {name:<16}", unit="step", position=k,
                       leave=True, disable=not self.terminal)
            for k, name in enumerate(runs)
        }  # fmt: skip

    def update(self, running: object = None) -> None:
        for name, folder in self.runs.items():
            step = _last_step(folder / "metrics.jsonl")
            self.bars[name].update(step - self.done[name])
            self.done[name] = step
        if not self.terminal and time.perf_counter() - self.last_line >= 30:
            self.last_line = time.perf_counter()
            steps = ", ".join(f"{name} {step}/{self.steps}" for name, step in self.done.items())
            minutes = (self.last_line - self.started) / 60
            print(f"      steps: {steps} ({minutes:.1f} min)", flush=True)

    def close(self) -> None:
        self.update()
        for bar in self.bars.values():
            bar.close()


def _last_step(metrics: Path) -> int:
    try:
        lines = metrics.read_text(encoding="utf-8").strip().splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def resolve_preset(args: argparse.Namespace) -> None:
    """--steps defaults to the preset's max_steps."""
    if args.steps is None:
        from mling.training.recipe import load_recipe

        args.steps = load_recipe(args.config).run.max_steps


@one_line_errors("demo.py")
def main(argv: list[str] | None = None) -> int:
    # config
    args = parse_args(argv)
    refuse_args(args, OPTION_CHECKS)  # before the first stage: its options, not theirs
    resolve_preset(args)
    code = code_state(MEASURED_MODULES)  # before the stages run: the code they ran
    # Stages run in the user's working directory with the paths as the user gave them, so the
    # reports name `demo-output/en/model`, never a path of this machine.
    out = args.output
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    stages = StageRunner("demo.py", out / "logs", total=STAGES)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    synthetic, vocab, filtered = out / "synthetic", out / "vocab", out / "filtered"

    # 1-3: data, vocabulary, filter
    generate = ["--output", str(synthetic), "--overwrite", "--pairs", str(args.pairs)]
    generate += ["--test-images", str(args.test_images), "--seed", str(args.seed), "--quiet"]
    seconds["synthetic"] = stages.run("synthetic", entry_point("data/synthetic.py", *generate))
    build = ["--input", str(synthetic / "pairs"), "--output", str(vocab), "--overwrite"]
    build += ["--vocab-size", str(args.vocab_size), "--lang-column", "synthetic_language"]
    build += ["--seed", str(args.seed)]
    seconds["vocabulary"] = stages.run(
        "build_vocab", entry_point("tokenizer_training/build_vocab.py", *build)
    )
    keep = ["--input", str(synthetic / "pairs"), "--output", str(filtered), "--overwrite"]
    keep += ["--eval-images", str(synthetic / "images"), "--eval-radius", str(args.eval_radius)]
    keep += ["-K", str(max(1, round(args.filter_vocabulary * args.pairs))), "--write-rejected"]
    seconds["filter"] = stages.run("filter", entry_point("data/filter.py", *keep, "--quiet"))

    # 4-5: training
    stages.announce("English subset of the kept pairs")
    english = english_subset(filtered, out / "filtered-en")
    print(f"      {english} English pairs -> {out / 'filtered-en'}", flush=True)
    data = {"mling": filtered, "en": out / "filtered-en", "mling-unfiltered": synthetic / "pairs"}
    assert tuple(data) == MODELS
    seconds["training"] = train_all(stages, data, args, out)

    # 6: evaluation
    evaluation = ["--multi30k", str(synthetic / "multi30k"), "--images", str(synthetic / "images")]
    evaluation += ["--output", str(out / "eval"), "--device", args.device]
    for name in MODELS:
        evaluation += ["--model", str(out / name / "model"), "--name", name]
    seconds["evaluation"] = stages.run("multi30k", entry_point("eval/multi30k.py", *evaluation))

    # 7: report
    seconds["total"] = time.perf_counter() - started
    paths = write_demo_report(out, vars(args) | {"output": str(out)}, seconds, code)
    stages.announce(f"report: {paths['md']} (and .png, .json); summary: {paths['summary']}")
    print(paths["summary"].read_text(encoding="utf-8").split("\n\n", 1)[1], end="")
    print(f"demo.py: done in {seconds['total'] / 60:.1f} min -> {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
