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
import subprocess
import sys
import time
from pathlib import Path

from mling.demo_report import MODELS, write_demo_report

STAGES = 7
# The script a user runs for each stage -> the module it calls, which the demo runs as
# `python -m` so that it works from an installed wheel as from a clone.
MODULES = {
    "data/synthetic.py": "mling.synthetic.generate",
    "tokenizer_training/build_vocab.py": "mling.vocab.build_vocab",
    "data/filter.py": "mling.filtering.pipeline",
    "mling/train.py": "mling.train",
    "eval/multi30k.py": "mling.evaluation.multi30k",
    "data/emoji_set.py": "mling.emoji_set.build",
    "eval/retrieval_set.py": "mling.evaluation.retrieval_set",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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


def entry_command(script: str, args: list[str]) -> list[str]:
    """`python -P -m MODULE ARGS` for the entry point a user runs as `python SCRIPT ARGS`; -P
    keeps the working directory off the import path, so no folder of the user's (a `data/`)
    can shadow a module."""
    return [sys.executable, "-P", "-m", MODULES[script], *args]


def run_stage(
    number: int,
    name: str,
    argv: list[str],
    logs: Path,
    stages: int = STAGES,
    cwd: Path | None = None,
) -> float:
    """Run one entry point (argv: its script, then its arguments) to completion, its output in
    logs/NAME.log; exit on failure. It runs in `cwd` (default: the log folder, our own), so
    relative paths in argv are relative to it."""
    print(f"[{number}/{stages}] {name}: {' '.join(argv)}", flush=True)
    started = time.perf_counter()
    log = logs / f"{name}.log"
    with log.open("w", encoding="utf-8") as out:
        command = entry_command(argv[0], argv[1:])
        code = subprocess.call(command, cwd=cwd or logs, stdout=out, stderr=out)
    seconds = time.perf_counter() - started
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    if code != 0:
        tail = "\n".join(lines[-5:])
        raise SystemExit(f"demo.py: {name} failed (exit {code}); see {log}:\n{tail}")
    summary = next(
        (line for line in reversed(lines) if line.startswith(argv[0].split("/")[-1])), ""
    )
    print(f"      {seconds:.0f} s. {summary}", flush=True)
    return seconds


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
    runs: dict[str, Path],
    args: argparse.Namespace,
    out: Path,
    flags: dict[str, list[str]] | None = None,
) -> float:
    """Train the models `parallel` at a time, threads split between them; bars from metrics.
    flags: extra train.py flags per run name (recipe fields on top of the preset)."""
    from tqdm import tqdm

    started = time.perf_counter()
    cores = os.cpu_count() or 1
    pending = list(runs.items())
    active: dict[str, tuple[subprocess.Popen, object]] = {}
    # Bars on a terminal; in a log (CI, `make demo > log`), one status line every 30 s.
    terminal = sys.stderr.isatty()
    bars = {
        name: tqdm(
            total=args.steps,
            desc=f"      {name:<16}",
            unit="step",
            position=k,
            leave=True,
            disable=not terminal,
        )
        for k, name in enumerate(runs)
    }
    done = {name: 0 for name in runs}
    last_line = time.perf_counter()
    while pending or active:
        while pending and len(active) < max(1, args.parallel):
            name, data = pending.pop(0)
            threads = max(1, cores // min(args.parallel, len(runs)))
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            log = (out / "logs" / f"train-{name}.log").open("w", encoding="utf-8")
            argv = ["--config", args.config]
            argv += ["--train-data", str(data), "--tokenizer", str(out / "vocab")]
            argv += ["--output-dir", str(out / name), "--max-steps", str(args.steps)]
            argv += ["--seed", str(args.seed), "--overwrite", *(flags or {}).get(name, [])]
            command = entry_command("mling/train.py", argv)
            proc = subprocess.Popen(command, cwd=out / "logs", stdout=log, stderr=log, env=env)
            active[name] = (proc, log)
        time.sleep(1.0)
        for name in list(active):
            proc, log = active[name]
            step = _last_step(out / name / "metrics.jsonl")
            bars[name].update(step - done[name])
            done[name] = step
            if proc.poll() is not None:
                log.close()
                del active[name]
                if proc.returncode != 0:
                    for other, _ in active.values():
                        other.terminate()
                    raise SystemExit(
                        f"demo.py: training {name} failed (exit {proc.returncode}); "
                        f"see {out / 'logs' / f'train-{name}.log'}"
                    )
                bars[name].update(args.steps - done[name])
                done[name] = args.steps
        if not terminal and time.perf_counter() - last_line >= 30:
            last_line = time.perf_counter()
            steps = ", ".join(f"{name} {step}/{args.steps}" for name, step in done.items())
            print(f"      steps: {steps} ({(last_line - started) / 60:.1f} min)", flush=True)
    for bar in bars.values():
        bar.close()
    return time.perf_counter() - started


def _last_step(metrics: Path) -> int:
    try:
        lines = metrics.read_text(encoding="utf-8").strip().splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def resolve_preset(args: argparse.Namespace) -> None:
    """--steps defaults to the preset's max_steps; a preset given as a YAML path becomes
    absolute, since the stages run in OUT/logs."""
    if args.steps is None:
        from mling.training.recipe import load_recipe

        args.steps = load_recipe(args.config).run.max_steps
    if Path(args.config).is_file():
        args.config = str(Path(args.config).resolve())


def main(argv: list[str] | None = None) -> int:
    # config
    args = parse_args(argv)
    resolve_preset(args)
    out = args.output.resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    synthetic, vocab, filtered = out / "synthetic", out / "vocab", out / "filtered"

    # 1-3: data, vocabulary, filter
    seconds["synthetic"] = run_stage(
        1,
        "synthetic",
        ["data/synthetic.py", "--output", str(synthetic), "--overwrite", "--pairs", str(args.pairs)]
        + ["--test-images", str(args.test_images), "--seed", str(args.seed), "--quiet"],
        out / "logs",
    )
    seconds["vocabulary"] = run_stage(
        2,
        "build_vocab",
        ["tokenizer_training/build_vocab.py", "--input", str(synthetic / "pairs")]
        + ["--output", str(vocab), "--overwrite", "--vocab-size", str(args.vocab_size)]
        + ["--lang-column", "synthetic_language", "--seed", str(args.seed)],
        out / "logs",
    )
    seconds["filter"] = run_stage(
        3,
        "filter",
        ["data/filter.py", "--input", str(synthetic / "pairs"), "--output", str(filtered)]
        + ["--overwrite"]
        + ["--eval-images", str(synthetic / "images"), "--eval-radius", str(args.eval_radius)]
        + ["-K", str(max(1, round(args.filter_vocabulary * args.pairs))), "--write-rejected"]
        + ["--quiet"],
        out / "logs",
    )

    # 4-5: training
    print(f"[4/{STAGES}] English subset of the kept pairs", flush=True)
    english = english_subset(filtered, out / "filtered-en")
    print(f"      {english} English pairs -> {out / 'filtered-en'}", flush=True)
    data = {"mling": filtered, "en": out / "filtered-en", "mling-unfiltered": synthetic / "pairs"}
    assert tuple(data) == MODELS
    print(f"[5/{STAGES}] mling/train.py --config {args.config} --max-steps {args.steps}, x3")
    seconds["training"] = train_all(data, args, out)

    # 6: evaluation
    evaluation = ["eval/multi30k.py", "--multi30k", str(synthetic / "multi30k")]
    evaluation += ["--images", str(synthetic / "images"), "--output", str(out / "eval")]
    evaluation += ["--device", args.device]
    for name in MODELS:
        evaluation += ["--model", str(out / name / "model"), "--name", name]
    seconds["evaluation"] = run_stage(6, "multi30k", evaluation, out / "logs")

    # 7: report
    seconds["total"] = time.perf_counter() - started
    paths = write_demo_report(out, vars(args) | {"output": str(out)}, seconds)
    print(f"[7/{STAGES}] report: {paths['md']} (and .png, .json)")
    print(paths["summary"])
    print(f"demo.py: done in {seconds['total'] / 60:.1f} min -> {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
