"""Ablations of the English-first transfer recipe on a finished `make demo-emoji`: one change
per row against the demo's recipe, the multilingual model alone.

    python -m benchmarks.transfer_ablation --demo demo-emoji-output [--rows recipe,cache-off]
        [--steps N] [--output bench-output/transfer_ablation] [--rerun]

Reuses the demo's vocabulary, training rows (OUT/pairs-mling), English model (OUT/en/model)
and evaluated held-out sample (OUT/heldout/captions.jsonl). Each row trains the multilingual
model from the English model as `mling/demo_emoji.py` does (TRANSFER_FLAGS, NAMES_PER_DRAWING,
TEXT_TEXT_WEIGHT), with the demo's preset, steps and seed unless given, plus the row's one
change, into OUTPUT/rows/NAME/mling; then evaluates it alone on the demo's sample and pool
(`eval/retrieval_set.py`, OUTPUT/rows/NAME/eval). The English model is not retrained: its
scores are the demo's own evaluation's (OUT/eval/report.json), on the same sample and pool
(checked: a row whose pool is not the demo's is marked). Each row's figures are
`mling.demo_emoji.summarize`'s on that merged report, so they mean what the demo's summary
means. Results are kept per row (OUTPUT/rows/NAME/result.json), so rows run one call at a
time add up; OUTPUT/ablation.{json,md} holds every row measured with this call's demo,
preset, steps and seed, with the exact commands.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import statistics
from pathlib import Path

from mling.common.cli import one_line_errors
from mling.common.errors import InputError
from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.common.stages import StageRunner, entry_point
from mling.demo_emoji import (
    NAMES_PER_DRAWING,
    POOL_MIN_IMAGES,
    TEXT_TEXT_WEIGHT,
    TRANSFER_FLAGS,
    summarize,
)
from mling.evaluation.fairness import BELOW

# name -> ({train.py flag: value, None drops the flag}, what the change tests)
ROWS: dict[str, tuple[dict[str, str | None], str]] = {
    "recipe": ({}, "the demo's transfer recipe as it is"),
    "cache-off": (
        {"--image-cache": "false"},
        "the frozen image tower runs in every step instead of once per drawing: the same "
        "numbers, only the time differs",
    ),
    "crop-random": (
        {"--crop": "random"},
        "the paper's random crop instead of the center crop: what dropping it costs (the "
        "pixels change every step, so the image-embedding cache is off)",
    ),
    "text-text-1": (
        {"--text-text-weight": "1"},
        "the text-text term on, weight 1: an emoji's names in a batch pulled together",
    ),
    "anchor-off": (
        {"--anchor-language": None},
        "no English anchor: every name slot drawn alike from the drawing's names",
    ),
    "text-init-off": (
        {"--init-text": None},
        "the text tower from scratch; the image tower still the English model's",
    ),
    "names-4": ({"--captions-per-image": "4"}, "4 names per drawing in a batch instead of 8"),
    "names-1": ({"--captions-per-image": "1"}, "1 name per drawing in a batch instead of 8"),
}
STAGES_PER_ROW = 2  # training, evaluation
# What the rows measure (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = (
    "mling/train.py",
    "mling/training/",
    "mling/evaluation/",
    "mling/demo_emoji.py",
    "mling/configs/emoji.yaml",
)
# What a finished `make demo-emoji` leaves that the rows reuse.
DEMO_FILES = (
    "vocab/tokenizer.json",
    "pairs-mling",
    "en/model/config.json",
    "heldout/captions.jsonl",
    "emoji-set/heldout/images",
    "eval/report.json",
    "report.json",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, default=Path("demo-emoji-output"))
    parser.add_argument("--rows", default="recipe", help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--rerun", action="store_true", help="train rows measured before again")
    parser.add_argument("--output", type=Path, default=Path("bench-output/transfer_ablation"))
    parser.add_argument("--config", help="training preset (default: the demo's)")
    parser.add_argument("--steps", type=int, help="optimizer steps per row (default: the demo's)")
    parser.add_argument("--seed", type=int, help="default: the demo's")
    parser.add_argument(
        "--pool-min-images",
        type=int,
        help=f"eval/retrieval_set.py --pool-min-images (default: the demo's, {POOL_MIN_IMAGES} "
        "unless it was given another): the pool must be the demo's English model's",
    )
    parser.add_argument("--device", default="auto", help="evaluation device: auto, cpu, cuda")
    args = parser.parse_args(argv)
    unknown = [row for row in args.rows.split(",") if row not in ROWS]
    if unknown:
        parser.error(f"--rows {','.join(unknown)}: choose from {', '.join(ROWS)}")
    return args


def read_demo(args: argparse.Namespace) -> dict:
    """The demo's summary (report.json) and evaluation (eval/report.json); fills in the
    preset, steps, seed and pool the call did not give from the demo's own. Raises InputError
    when the folder is not a finished demo."""
    if not args.demo.is_dir():
        raise InputError(
            f"no folder {args.demo}: pass --demo the output folder of a finished "
            "`make demo-emoji` (mling/demo_emoji.py --output DIR)"
        )
    missing = [name for name in DEMO_FILES if not (args.demo / name).exists()]
    if missing:
        raise InputError(
            f"{args.demo} lacks {', '.join(missing)}: pass --demo the output folder of a "
            "finished `make demo-emoji` (mling/demo_emoji.py --output DIR)"
        )
    summary = json.loads((args.demo / "report.json").read_text(encoding="utf-8"))
    evaluation = json.loads((args.demo / "eval" / "report.json").read_text(encoding="utf-8"))
    if "en" not in evaluation.get("models", {}):
        raise InputError(
            f"{args.demo}/eval/report.json has no model named 'en'; rerun `make demo-emoji`"
        )
    config = summary.get("config", {})
    args.config = args.config or config.get("config", "emoji")
    if args.steps is None:
        if config.get("steps") in (None, "None"):
            raise InputError(f"{args.demo}/report.json records no steps; pass --steps N")
        args.steps = int(config["steps"])
    args.seed = args.seed if args.seed is not None else int(config.get("seed", 0))
    if args.pool_min_images is None:
        args.pool_min_images = int(config.get("pool_min_images", POOL_MIN_IMAGES))
    return {"summary": summary, "evaluation": evaluation}


def recipe_flags(demo: Path) -> dict[str, str]:
    """The demo's transfer recipe as {flag: value}, in the order the demo passes them."""
    model = str(demo / "en" / "model")
    flags = {"--init-image": model, "--init-text": model}
    flags |= dict(zip(TRANSFER_FLAGS[::2], TRANSFER_FLAGS[1::2], strict=True))
    flags |= {
        "--captions-per-image": str(NAMES_PER_DRAWING),
        "--text-text-weight": str(TEXT_TEXT_WEIGHT),
    }
    return flags


def train_command(args: argparse.Namespace, name: str) -> list[str]:
    """The row's `mling/train.py` command: the demo's multilingual one with the row's change."""
    flags = recipe_flags(args.demo) | ROWS[name][0]
    command = ["mling/train.py", "--train-data", str(args.demo / "pairs-mling")]
    command += ["--output-dir", str(args.output / "rows" / name / "mling")]
    command += ["--config", args.config, "--tokenizer", str(args.demo / "vocab")]
    command += ["--max-steps", str(args.steps), "--seed", str(args.seed), "--overwrite"]
    command += ["--positives", "image_id"]
    return command + [part for flag, value in flags.items() if value for part in (flag, value)]


def eval_command(args: argparse.Namespace, name: str) -> list[str]:
    """The demo's evaluation of the row's model alone, on the demo's sample and pool."""
    folder = args.output / "rows" / name
    command = ["eval/retrieval_set.py", "--captions", str(args.demo / "heldout/captions.jsonl")]
    command += ["--images", str(args.demo / "emoji-set/heldout/images"), "--device", args.device]
    command += ["--batch-size", "256", "--output", str(folder / "eval"), "--no-cache"]
    command += ["--title", f"Emoji, held-out drawings, transfer ablation {name}"]
    command += ["--pool-min-images", str(args.pool_min_images)]
    return command + ["--model", str(folder / "mling" / "model"), "--name", "mling"]


def pool_difference(row: dict, demo: dict) -> str | None:
    """None when the row's evaluation compared languages on the demo's pool (the same number
    of drawings, the same languages), else how it differs."""
    mine, theirs = row.get("shared_pool") or {}, demo.get("shared_pool") or {}
    if mine.get("images") != theirs.get("images"):
        return f"{mine.get('images')} drawings, the demo's {theirs.get('images')}"
    if mine.get("languages") != theirs.get("languages"):
        extra = sorted(set(mine.get("languages", [])) ^ set(theirs.get("languages", [])))
        return f"languages differ ({', '.join(extra) or 'order'})"
    return None


def merged_report(row: dict, demo: dict, difference: str | None) -> dict:
    """The row's report.json with the demo's English model beside its `mling` model, on each
    language's own drawings and on the shared pool; a pool that is not the demo's is refused,
    so that nothing is judged on it."""
    report = copy.deepcopy(row)
    report["models"]["en"] = demo["models"]["en"]
    pool = report.get("shared_pool")
    if pool:
        if difference:
            pool["refused"] = f"the row's pool is not the demo's: {difference}"
        elif pool.get("refused") is None:
            pool["models"]["en"] = demo["shared_pool"]["models"]["en"]
    return report


def measure(name: str, args: argparse.Namespace, demo: dict, stages: StageRunner) -> dict:
    """Train and evaluate one row; its result as saved in OUTPUT/rows/NAME/result.json."""
    folder = args.output / "rows" / name
    code = code_state(MEASURED_MODULES)
    train, evaluation = train_command(args, name), eval_command(args, name)
    # in the working directory, paths as the user gave them, as the demo runs its stages
    seconds = {
        "training": stages.run(
            f"{name}-train", entry_point(*train), log=folder / "logs" / f"{name}-train.log"
        ),
        "evaluation": stages.run(
            f"{name}-eval", entry_point(*evaluation), log=folder / "logs" / f"{name}-eval.log"
        ),
    }
    report = json.loads((folder / "eval" / "report.json").read_text(encoding="utf-8"))
    difference = pool_difference(report, demo["evaluation"])
    heldout = tuple(demo["summary"].get("heldout_languages", ()))
    result = {
        "row": name,
        "change": " ".join(
            f"{flag} {value}" if value else f"without {flag}"
            for flag, value in ROWS[name][0].items()
        ),  # fmt: skip
        "what": ROWS[name][1],
        "demo": str(args.demo.resolve()),
        "config": args.config,
        "steps": args.steps,
        "seed": args.seed,
        "pool_min_images": args.pool_min_images,
        "commands": {
            "train": shlex.join(["python", *train]),
            "eval": shlex.join(["python", *evaluation]),
        },
        "seconds": seconds,
        "provenance": code | {"label": f"row {name}"},
        "pool_differs": difference,
        "summary": summarize(merged_report(report, demo["evaluation"], difference), heldout),
    }
    path = folder / "result.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


def measured(args: argparse.Namespace) -> list[dict]:
    """Every row's saved result made from this call's demo, preset, steps, seed and pool."""
    wanted = (str(args.demo.resolve()), args.config, args.steps, args.seed, args.pool_min_images)
    results = []
    for name in ROWS:
        path = args.output / "rows" / name / "result.json"
        if path.is_file():
            result = json.loads(path.read_text(encoding="utf-8"))
            keys = ("demo", "config", "steps", "seed", "pool_min_images")
            if tuple(result.get(k) for k in keys) == wanted:
                results.append(result)
    return results


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ratio(part: float | None, whole: float | None) -> str:
    ratio = part / whole if part is not None and whole else None
    return f"{_fmt(part)} / {_fmt(whole)} = {_fmt(ratio, 2)}x"


def heldout_median(summary: dict, model: str) -> float | None:
    """The median mR of the held-out languages (never trained on) for one model."""
    scores = [v[model] for v in summary["heldout"].values() if v[model] is not None]
    return statistics.median(scores) if scores else None


def table_rows(results: list[dict]) -> list[dict]:
    """Each row's figures as the table shows them, training time against the recipe row's."""
    recipe = next((r for r in results if r["row"] == "recipe"), None)
    base = recipe["seconds"]["training"] if recipe else None
    rows = []
    for r in results:
        s, fair = r["summary"], r["summary"]["mling_trained"]
        training = r["seconds"]["training"]
        rows.append(
            {
                "row": r["row"],
                "change": r["change"],
                "mling_en_mR": s["mling_model_en_mR"],
                "en_model_en_mR": s["en_model_en_mR"],
                "mling_over_en": s["mling_over_en"],
                "worst_language": fair["worst_language"],
                "worst_mR": fair["worst"],
                "english_mR": fair["english"],
                "worst_over_english": fair["worst_ratio"],
                "median_mR": fair["median"],
                "median_over_english": s["median_over_english"],
                "trained_languages": s["trained_languages"],
                "below": len(fair["below"]),
                "heldout_median_mR": heldout_median(s, "mling"),
                "heldout_median_en_model_mR": heldout_median(s, "en_model"),
                "training_minutes": training / 60,
                "training_vs_recipe": training / base if base else None,
                "judged_on": s["judged_on"],
                "pool_differs": r["pool_differs"],
                "train_command": r["commands"]["train"],
                "eval_command": r["commands"]["eval"],
            }
        )
    return rows


def markdown(args: argparse.Namespace, demo: dict, rows: list[dict], results: list[dict]) -> str:
    """The report: the table, what each row changes, its commands."""
    summary = demo["summary"]
    heldout = ", ".join(summary.get("heldout_languages", [])) or "none"
    pool = (demo["evaluation"].get("shared_pool") or {}) if args.pool_min_images else {}
    if pool and pool.get("refused") is None:
        judged = (
            f"Every figure is on the demo's shared pool: the {pool['images']:,} drawings named in "
            f"all {len(pool['languages'])} compared languages (chance mR "
            f"{pool['chance_mR']:.2f}); a row whose own evaluation made another pool is marked "
            "in the pool column and judged on each language's own drawings."
        )
    else:
        reason = pool.get("refused") or "--pool-min-images 0"
        judged = (
            f"The demo's evaluation made no shared pool ({reason}): every figure is on each "
            "language's own drawings, which do not meet on one footing."
        )
    config = summary.get("config", {})
    own = f"--captions-per-image {config.get('captions_per_image', '?')}, --text-text-weight "
    own += f"{config.get('text_text_weight', '?')}, {config.get('steps', '?')} steps"
    own += f", {config['mling_flags']}" if config.get("mling_flags") else ""
    demo_fair = summary.get("mling_trained") or {}
    keys = ("captions_per_image", "text_text_weight", "mling_flags", "config", "steps", "seed")
    recorded = tuple(config.get(k) for k in keys)
    same = recorded == (str(NAMES_PER_DRAWING), str(TEXT_TEXT_WEIGHT), "", args.config,
                        str(args.steps), str(args.seed))  # fmt: skip
    header = [
        "# Transfer recipe ablations on the emoji set\n",
        f"The demo in `{args.demo}`: preset `{args.config}`, {args.steps} steps, seed "
        f"{args.seed}. Each row trains the multilingual model by the demo's transfer recipe "
        "from the demo's English model (`en/model`), on its training rows (`pairs-mling`) with "
        "its vocabulary, with one change; then evaluates it alone on the demo's held-out "
        f"sample (`heldout/captions.jsonl`, --pool-min-images {args.pool_min_images}). The "
        "English model is the demo's, not retrained: its scores come from the demo's own "
        "`eval/report.json`, on the same sample and the same pool (checked per row). Figures "
        "are `mling/demo_emoji.py`'s summary: mR in percent; English, worst and median of the "
        f"multilingual model over its trained languages; held out (never trained on): {heldout}. "
        f"{judged} Minutes: `mling/train.py`'s wall time, its image-embedding cache "
        "included; each row's own evaluation is in `rows/NAME/eval/report.md`.\n",
        f"For reference, the demo's own multilingual model ({own}) scored English "
        f"{_fmt(summary.get('mling_model_en_mR'))}, worst trained "
        f"{demo_fair.get('worst_language') or '—'} {_fmt(demo_fair.get('worst'))}, median "
        f"{_fmt(demo_fair.get('median'))}; "
        + (
            "the `recipe` row retrains it (the same flags, preset, steps and seed)."
            if same
            else "it was not trained as the `recipe` row is."
        )
        + "\n",
    ]
    table = markdown_table(
        ["row", "change", "mling en / en model en", "worst trained / its en",
         "median / its en", f"under {BELOW}x", "held-out median (en model)",
         "training min", "vs recipe", "pool"],
        [
            [r["row"], f"`{r['change']}`" if r["change"] else "—",
             _ratio(r["mling_en_mR"], r["en_model_en_mR"]),
             f"{r['worst_language'] or '—'} {_ratio(r['worst_mR'], r['english_mR'])}",
             _ratio(r["median_mR"], r["english_mR"]),
             f"{r['below']} of {r['trained_languages']}",
             f"{_fmt(r['heldout_median_mR'])} ({_fmt(r['heldout_median_en_model_mR'])})",
             _fmt(r["training_minutes"]), f"{_fmt(r['training_vs_recipe'], 2)}x",
             f"differs: {r['pool_differs']}" if r["pool_differs"] else "the demo's"]
            for r in rows
        ],
    )  # fmt: skip
    notes = ["\n## What each row changes\n"]
    notes += [f"- **{r['row']}**: {r['what']}." for r in results]
    notes += ["\n## Commands\n"]
    for r in rows:
        notes += [f"**{r['row']}**\n", "```bash"]
        notes.append(
            f"python -m benchmarks.transfer_ablation --demo {args.demo} --config {args.config} "
            f"--steps {args.steps} --seed {args.seed} --rows {r['row']}  # runs the two below"
        )
        notes += [r["train_command"], r["eval_command"], "```\n"]
    return "\n".join([*header, table, *notes])


@one_line_errors("transfer_ablation.py")
def main(argv: list[str] | None = None) -> int:
    # config
    args = parse_args(argv)
    demo = read_demo(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.output.mkdir(parents=True, exist_ok=True)

    # rows: each trained and evaluated once, unless --rerun
    done = {r["row"] for r in measured(args)}
    todo = [name for name in args.rows.split(",") if args.rerun or name not in done]
    for name in args.rows.split(","):
        if name not in todo:
            print(f"{name}: measured before (--rerun to train again)", flush=True)
    stages = StageRunner(
        "transfer_ablation.py", args.output / "logs", total=STAGES_PER_ROW * len(todo)
    )
    for name in todo:
        result = measure(name, args, demo, stages)
        s = result["summary"]
        fair = s["mling_trained"]
        print(f"{name}: mling en {_fmt(s['mling_model_en_mR'])} (en model "
              f"{_fmt(s['en_model_en_mR'])}), worst {fair['worst_language']} "
              f"{_fmt(fair['worst'])}, median {_fmt(fair['median'])}; training "
              f"{result['seconds']['training'] / 60:.1f} min", flush=True)  # fmt: skip

    # report
    results = measured(args)
    if not results:
        raise SystemExit(f"transfer_ablation.py: no row measured with these settings in "
                         f"{args.output}; nothing to report")  # fmt: skip
    rows = table_rows(results)
    provenance = [  # each row measured at its own commit, rows of earlier calls included
        r.get("provenance") or {"label": f"row {r['row']}", "modules": list(MEASURED_MODULES)}
        for r in results
    ]
    data = {"demo": str(args.demo), "config": args.config, "steps": args.steps,
            "seed": args.seed, "pool_min_images": args.pool_min_images, "rows": rows,
            "results": results, "provenance": provenance}  # fmt: skip
    paths = write_report(args.output, "ablation", data, markdown(args, demo, rows, results))
    print(f"transfer_ablation.py: {len(results)} rows -> {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
