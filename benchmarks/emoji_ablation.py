"""Ablations of the multilingual recipe on the real emoji set: one change per row, both models.

    python -m benchmarks.emoji_ablation [--rows baseline,positives] [--steps 300] [--rerun]

Builds (or reuses) the emoji set (`data/emoji_set.py`) for LANGUAGES in OUTPUT/emoji-set, a
WordPiece vocabulary on its captions, and its English rows as OUTPUT/pairs-en. Each row trains
the English model (English rows only) and the multilingual model (every language's rows) with
the same preset, steps and seed plus the row's flags, one after the other on one thread each,
then evaluates both per language on the held-out drawings (`eval/retrieval_set.py`). A row
whose change cannot touch the English model (its rows each show their own image) reuses the
baseline's English model and its evaluation. Results are kept per row (OUTPUT/rows/NAME/result.json), so rows run
one call at a time add up; the table in OUTPUT/ablation.{json,md} holds every row measured
with this call's preset, steps and seed, with the exact commands that trained it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.common.stages import StageRunner, python_module

# 20 languages in 11 scripts: Latin with and without diacritics, Cyrillic, Greek, Arabic and
# Hebrew (right to left), Devanagari and Bengali, Thai, Japanese and Chinese (no spaces), Korean.
LANGUAGES = "en,de,fr,es,cs,pl,tr,vi,ru,uk,ar,he,fa,hi,bn,ja,zh,ko,th,el"
# What the rows measure (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = (
    "mling/emoji_set/",
    "mling/vocab/",
    "mling/train.py",
    "mling/training/",
    "mling/evaluation/",
    "mling/configs/emoji.yaml",
)

# name -> (extra train.py flags, whether the change can touch the English model, what it tests,
# extra data/emoji_set.py flags: a row that changes the data trains on its own build)
ROWS: dict[str, tuple[list[str], bool, str, list[str]]] = {
    "baseline": ([], True, "the preset as it is", []),
    "one-artist": (
        [],
        True,
        "training drawings by OpenMoji alone instead of five artists",
        ["--drawings", "openmoji"],
    ),
    "positives": (
        ["--positives", "image_id"],
        False,
        "rows of one emoji (its other names and drawings) are positives, not false negatives",
        [],
    ),
    "grouped-4": (
        ["--positives", "image_id", "--group-rows", "4", "--shuffle-rows", "65536"],
        False,  # the English rows have one language: nothing to group
        "each batch holds 32 drawings with 4 of their names each, positives of each other "
        "(the set written drawing by drawing, --order drawings; 65,536-row windows)",
        ["--order", "drawings"],
    ),
    "captions-4": (
        ["--positives", "image_id", "--captions-per-image", "4"],
        False,  # the English rows have one name per emoji: K slots would repeat it
        "each drawing in a batch with 4 of its names, each in another language (128 drawings, "
        "512 names per batch; the loss the mean of the paper's over the 4 name slots)",
        [],
    ),
    "captions-8": (
        ["--positives", "image_id", "--captions-per-image", "8"],
        False,
        "as captions-4 with 8 names per drawing (1,024 names per batch)",
        [],
    ),
    "temperature-0.5": (
        ["--temperature-init", "0.5"],
        True,
        "temperature starts at 0.5 (the preset's 0.1; the `demo` preset's 0.5)",
        [],
    ),
    "lr-3e-3": (
        ["--lr", "0.003"],
        True,
        "peak learning rate 3e-3 (the preset's 6e-3; the `demo` preset's 3e-3)",
        [],
    ),
    "image-48": (["--image-size", "48"], True, "48 px images (the preset's 64)", []),
    # the loss: SigLIP's against ALIGN's at the same steps and batch, then both at a batch of 32
    # (where SigLIP reports its largest gain). Its loss column is not the softmax's: each image
    # pays for every pair, so it starts near (batch) x log 2 and has no 2 ln B chance level.
    "sigmoid": (
        ["--loss", "sigmoid", "--temperature-init", "0.1"],
        True,
        "SigLIP's pairwise sigmoid loss, temperature from 0.1 and bias from -10, instead of the "
        "softmax (the preset's temperature is 0.1 too)",
        [],
    ),
    "batch-32": (["--batch-size", "32"], True, "a batch of 32 (the preset's 128)", []),
    "sigmoid-batch-32": (
        ["--loss", "sigmoid", "--temperature-init", "0.1", "--batch-size", "32"],
        True,
        "the sigmoid loss at a batch of 32",
        [],
    ),
    "text-256": (
        ["--text-hidden", "256", "--text-intermediate", "1024", "--text-heads", "4"],
        True,
        "a text tower twice as wide: hidden 256, 4 heads, feed-forward 1024 (the preset's "
        "128, 2, 512)",
        [],
    ),
    "all-languages": (
        [],
        False,  # the English rows are the same drawings and names
        "the set in all 129 languages instead of 20, every one evaluated",
        ["--languages", ""],
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output/emoji_ablation"))
    parser.add_argument("--rows", default="baseline", help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--rerun", action="store_true", help="train rows measured before again")
    parser.add_argument("--config", default="emoji", help="training preset (mling/configs)")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--languages", default=LANGUAGES, help="CLDR locales of the set")
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument(
        "--exemplar-share",
        type=float,
        default=0.4,
        help="build_vocab.py --exemplar-share: room for the everyday hanzi and hangul",
    )
    parser.add_argument("--cache", help="emoji_set.py --cache (default its own)")
    args = parser.parse_args(argv)
    unknown = [row for row in args.rows.split(",") if row not in ROWS]
    if unknown:
        parser.error(f"--rows {','.join(unknown)}: choose from {', '.join(ROWS)}")
    return args


# Every run on one thread (a row's two trainings share the two cores), offline.
ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def run(command: list[str], log: Path) -> float:
    """A `python -m` command (module, then its arguments) to completion, output in log."""
    return run_together([(command, log)])[0]


def run_together(commands: list[tuple[list[str], Path]]) -> list[float]:
    """`python -m` commands side by side, output in their logs; seconds each; the first
    failure ends the benchmark in one line naming its log."""
    runner = StageRunner("emoji_ablation.py", ".", env=ENV)
    stages = [
        runner.stage(log.stem, python_module(command[0], command[1:], isolated=False), log=log)
        for command, log in commands
    ]
    runner.run_together(stages)
    return [stage.seconds for stage in stages]


def shown(command: list[str]) -> str:
    """A module command as a user types it."""
    return " ".join(["python", "-m", *command])


def prepare(args: argparse.Namespace, name: str = "baseline") -> dict[str, Path]:
    """The emoji set, its English rows and the vocabulary, each built once and reused. A row
    with builder flags gets its own set and English rows (OUTPUT/sets/NAME/) and the
    baseline's vocabulary: the names are the same."""
    import pyarrow.dataset as ds

    from mling.pairs.shards import write_pair_shards

    out = args.output
    build_flags = ROWS[name][3]
    root = out / "sets" / name if build_flags else out
    emoji, english, vocab = root / "emoji-set", root / "pairs-en", out / "vocab"
    if not (emoji / "heldout" / "captions.jsonl").is_file():
        command = ["mling.emoji_set.build", "--output", str(emoji), "--languages", args.languages]
        command += ["--workers", "2", "--seed", str(args.seed), "--overwrite", *build_flags]
        command += ["--cache", args.cache] if args.cache else []
        print(f"emoji set: {shown(command)}", flush=True)
        run(command, out / "logs" / f"emoji_set-{name}.log")
    if not english.is_dir():
        table = ds.dataset(sorted((emoji / "pairs").glob("part-*.parquet"))).to_table(
            filter=ds.field("language") == "en"
        )
        write_pair_shards(table.to_batches(), english, overwrite=True)
    openmoji = root / "openmoji-images"  # one training artist's drawing per emoji, as files
    if not openmoji.is_dir():
        table = ds.dataset(sorted(english.glob("part-*.parquet"))).to_table()
        columns = (table[c].to_pylist() for c in ("image_id", "url", "image"))
        openmoji.mkdir()
        for key, url, png in zip(*columns, strict=True):
            if url.startswith("npm:openmoji@"):
                (openmoji / f"{key}.png").write_bytes(png)
    if not (vocab / "tokenizer.json").is_file():
        if build_flags:
            prepare(args)  # the baseline's set, whose names the vocabulary learns
        else:
            command = ["mling.vocab.build_vocab", "--input", str(emoji / "pairs"), "--output"]
            command += [str(vocab), "--overwrite", "--vocab-size", str(args.vocab_size)]
            command += ["--lang-column", "language", "--seed", str(args.seed)]
            command += ["--exemplar-share", str(args.exemplar_share)]
            print(f"vocabulary: {shown(command)}", flush=True)
            run(command, out / "logs" / "build_vocab.log")
    return {
        "emoji": emoji,
        "en": english,
        "mling": emoji / "pairs",
        "vocab": vocab,
        "openmoji": openmoji,
    }


def train_command(args, data: Path, vocab: Path, output: Path, extra: list[str]) -> list[str]:
    command = ["mling.train", "--config", args.config, "--train-data", str(data)]
    command += ["--tokenizer", str(vocab), "--output-dir", str(output)]
    command += ["--max-steps", str(args.steps), "--seed", str(args.seed), "--num-workers", "0"]
    return [*command, "--save-every", "0", *extra, "--overwrite"]


def summarize(by_language: dict[str, dict], english_model: dict[str, dict]) -> dict:
    """The table's numbers from two models' {language: {"mR": ...}} (mR in percent)."""
    mr = {lang: scores["mR"] for lang, scores in by_language.items()}
    en = mr["en"]
    worst = min(mr, key=mr.get)
    return {
        "en_model_en": english_model["en"]["mR"],
        "mling_en": en,
        "ratio": en / english_model["en"]["mR"] if english_model["en"]["mR"] else None,
        "worst_language": worst,
        "worst": mr[worst],
        "worst_over_en": mr[worst] / en if en else None,
        "median": statistics.median(mr.values()),
        "mR": mr,
    }


def measure(name: str, args: argparse.Namespace, inputs: dict[str, Path]) -> dict:
    """Train and evaluate one row; its result (commands, seconds, scores) as saved."""
    extra, touches_english, what, _ = ROWS[name]
    folder = args.output / "rows" / name
    code = code_state(MEASURED_MODULES)
    models, commands, seconds = {}, {}, {}
    trained = ("en", "mling") if touches_english or name == "baseline" else ("mling",)
    jobs = []
    for model in trained:
        command = train_command(args, inputs[model], inputs["vocab"], folder / model, extra)
        print(f"{name}/{model}: {shown(command)}", flush=True)
        jobs.append((command, folder / "logs" / f"train-{model}.log"))
        models[model], commands[f"train_{model}"] = folder / model / "model", shown(command)
    for model, took in zip(trained, run_together(jobs), strict=True):
        seconds[f"train_{model}"] = took
    evaluation = ["mling.evaluation.retrieval_set", "--output", str(folder / "eval")]
    evaluation += ["--captions", str(inputs["emoji"] / "heldout" / "captions.jsonl")]
    evaluation += ["--images", str(inputs["emoji"] / "heldout" / "images"), "--device", "cpu"]
    evaluation += ["--no-cache"]
    for model, path in models.items():
        evaluation += ["--model", str(path), "--name", model]
    print(f"{name}/eval: {shown(evaluation)}", flush=True)
    seconds["eval"] = run(evaluation, folder / "logs" / "eval.log")
    commands["eval"] = shown(evaluation)
    scores = json.loads((folder / "eval" / "report.json").read_text(encoding="utf-8"))["models"]
    heldout_images = inputs["emoji"] / "heldout" / "images"
    images_mr = {
        m: image_match(path, heldout_images, inputs["openmoji"]) for m, path in models.items()
    }
    if "en" not in scores:  # the baseline's English model, as the baseline measured it
        baseline = json.loads((args.output / "rows" / "baseline" / "result.json").read_text())
        scores["en"] = {lang: {"mR": value} for lang, value in baseline["en_model_mR"].items()}
    result = {
        "row": name,
        "flags": " ".join(extra),
        "what": what,
        "english_model": "trained" if "en" in trained else "the baseline's",
        "config": args.config,
        "steps": args.steps,
        "seed": args.seed,
        "languages": args.languages,
        "commands": commands,
        "seconds": seconds,
        "provenance": code | {"label": f"row {name}"},
        **summarize(scores["mling"], scores["en"]),
        "en_model_mR": {lang: value["mR"] for lang, value in scores["en"].items()},
        "image_mR": images_mr,  # the image tower alone, Fluent <-> OpenMoji
    }
    (folder / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def image_match(model: Path, heldout: Path, training: Path) -> float:
    """mR of the image tower alone: each held-out drawing (Fluent) as a query among the
    training artist's drawings (OpenMoji) of the same emoji, and back. It tells whether a
    model's image side tells the emoji apart across artists, whatever its text side does."""
    from mling.evaluation.embed import EmbedConfig, Embedder
    from mling.evaluation.recall import retrieval_metrics

    keys = sorted(p.stem for p in training.glob("*.png") if (heldout / p.name).is_file())
    embedder = Embedder(model, EmbedConfig(device="cpu"), log=lambda line: None)
    queries = embedder.images([heldout / f"{key}.png" for key in keys])
    targets = embedder.images([training / f"{key}.png" for key in keys])
    return retrieval_metrics(queries, targets, list(range(len(keys))))["mR"]


def wall_minutes(seconds: dict[str, float]) -> float:
    """A row's wall time: its trainings ran side by side, then its evaluation."""
    trainings = [v for k, v in seconds.items() if k.startswith("train_")]
    return (max(trainings, default=0.0) + seconds.get("eval", 0.0)) / 60


def last_loss(run: Path) -> float | None:
    """The training loss at a run's last logged step (metrics.jsonl), None without one."""
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return None
    lines = metrics.read_text(encoding="utf-8").strip().splitlines()
    return json.loads(lines[-1])["loss"] if lines else None


def measured(args: argparse.Namespace) -> list[dict]:
    """Every row's saved result that matches this call's preset, steps, seed and languages,
    with each model's final training loss (the English one the baseline's when reused)."""
    results = []
    for name in ROWS:
        path = args.output / "rows" / name / "result.json"
        if not path.is_file():
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        same = (result["config"], result["steps"], result["seed"], result["languages"])
        if same == (args.config, args.steps, args.seed, args.languages):
            if "image_mR" not in result:  # measured before the diagnostic existed
                inputs = prepare(args, name)
                heldout = inputs["emoji"] / "heldout" / "images"
                result["image_mR"] = {
                    model: image_match(run / "model", heldout, inputs["openmoji"])
                    for model in ("en", "mling")
                    if (run := args.output / "rows" / name / model).is_dir()
                }
                path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
            english = "baseline" if result["english_model"] != "trained" else name
            result["en_loss"] = last_loss(args.output / "rows" / english / "en")
            result["mling_loss"] = last_loss(args.output / "rows" / name / "mling")
            results.append(result)
    return results


def markdown(args: argparse.Namespace, results: list[dict]) -> str:
    """The report: the table, each language's mR, what each row changes, its commands. mR with
    two decimals: near chance (0.17), one decimal would hide the differences."""
    languages = args.languages.split(",")
    header = [
        "# Multilingual recipe ablations on the emoji set\n",
        f"Preset `{args.config}`, {args.steps} steps, seed {args.seed}, one thread per run; "
        f"{len(languages)} languages ({', '.join(languages)}). mR on the held-out drawings "
        "(Fluent Emoji), each language's names as queries; `en` model: English rows only; "
        "`mling` model: every language's rows. Each row is one change against the baseline. "
        "Chance is mR 0.17 (3,139 images). Loss: the training loss at the last step (2 ln 128 "
        "= 9.70 at chance; with --positives the targets are spread over each image's rows, so "
        "its floor is above 0 and its loss is comparable only roughly). Image mR: the image "
        "tower alone, each held-out drawing a query among the OpenMoji drawings of the same "
        "3,139 emoji and back (no text; — where the row reuses the baseline's English model). Minutes: the row's "
        "wall time, its trainings side by side on one thread each, then the evaluation; a "
        "reused English model costs none.\n",
    ]
    rows = [
        [
            r["row"], f"`{r['flags']}`" if r["flags"] else "—", f"{r['en_model_en']:.2f}",
            f"{r['mling_en']:.2f}", f"{r['ratio']:.2f}" if r["ratio"] is not None else None,
            f"{r['median']:.2f}", f"{r['worst_language']} {r['worst']:.2f}",
            f"{r['worst_over_en']:.2f}" if r["worst_over_en"] is not None else None,
            *(f"{r[k]:.2f}" if r.get(k) is not None else None for k in ("en_loss", "mling_loss")),
            " / ".join(f"{r['image_mR'][m]:.1f}" if m in r.get("image_mR", {}) else "—"
                       for m in ("en", "mling")),
            f"{wall_minutes(r['seconds']):.1f}",
        ]
        for r in results
    ]  # fmt: skip
    table = markdown_table(
        ["row", "change", "en model, en mR", "mling, en mR", "mling/en", "mling median",
         "mling worst", "worst/en", "en loss", "mling loss", "image mR en / mling", "minutes"],
        rows,
    )  # fmt: skip
    notes = ["\n## What each row changes\n"]
    notes += [
        f"- **{r['row']}**: {r['what']}; English model: {r['english_model']}." for r in results
    ]
    notes += ["\n## Commands\n"]
    for r in results:
        notes.append(f"**{r['row']}**\n\n```bash")
        notes.append(
            f"python -m benchmarks.emoji_ablation --config {args.config} --steps {args.steps} "
            f"--seed {args.seed} --rows {r['row']}  # runs the commands below"
        )
        build_flags = ROWS[r["row"]][3] if r["row"] in ROWS else []
        if build_flags:  # the row's own data, built once by prepare()
            emoji = args.output / "sets" / r["row"] / "emoji-set"
            build = ["mling.emoji_set.build", "--output", str(emoji), "--languages"]
            build += [args.languages, "--workers", "2", "--seed", str(args.seed), "--overwrite"]
            notes.append(shown([*build, *build_flags]))
        notes += [
            r["commands"][k] for k in ("train_en", "train_mling", "eval") if k in r["commands"]
        ]
        notes.append("```\n")
    languages_table = markdown_table(
        ["language", *(r["row"] for r in results)],
        [
            [lang, *(f"{r['mR'][lang]:.2f}" if lang in r["mR"] else "—" for r in results)]
            for lang in languages
        ],
    )
    return "\n".join([*header, table, "\n## mling model, mR per language\n", languages_table,
                      *notes])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    prepare(args)
    done = {r["row"] for r in measured(args)}
    for name in args.rows.split(","):
        if name != "baseline" and not ROWS[name][1] and "baseline" not in done:
            raise SystemExit(f"emoji_ablation.py: row {name} reuses the baseline's English "
                             "model; run --rows baseline first")  # fmt: skip
        if name in done and not args.rerun:
            print(f"{name}: measured before (--rerun to train again)", flush=True)
            continue
        result = measure(name, args, prepare(args, name))
        done.add(name)
        minutes = wall_minutes(result["seconds"])
        print(f"{name}: en model en {result['en_model_en']:.1f}, mling en {result['mling_en']:.1f}"
              f", worst {result['worst_language']} {result['worst']:.1f}; {minutes:.1f} min",
              flush=True)  # fmt: skip
    results = measured(args)
    if not results:
        raise SystemExit(f"emoji_ablation.py: no row measured with these settings in "
                         f"{args.output}; nothing to report")  # fmt: skip
    provenance = [  # each row measured at its own commit, rows of earlier calls included
        r.get("provenance") or {"label": f"row {r['row']}", "modules": list(MEASURED_MODULES)}
        for r in results
    ]
    data = {"rows": results, "provenance": provenance}
    paths = write_report(args.output, "ablation", data, markdown(args, results))
    print(f"emoji_ablation.py: {len(results)} rows -> {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
