"""The loss, softmax or sigmoid, on the `make demo` recipe: the same data, steps, seed and batch
on both sides, and both again at a batch of 32.

    python -m benchmarks.loss_ablation                 # 4 demo runs: ~20 min on 2 cores
    python -m benchmarks.loss_ablation --rows softmax,sigmoid

Each row runs `mling/demo.py` whole (the same synthetic corpus, vocabulary and filter, from the
same seed) with the `demo` preset and the row's changes, written as a preset file beside its
output (OUTPUT/presets/ROW.yaml); its three models are evaluated on the synthetic Multi30k test
set. The sigmoid rows start from SigLIP's temperature, 0.1 (the preset's own is 0.5, for the
softmax loss). The emoji preset's rows are `benchmarks/emoji_ablation.py`'s `sigmoid`,
`batch-32` and `sigmoid-batch-32`. Writes OUTPUT/ablation.{json,md}; each row keeps its own
result (OUTPUT/rows/ROW/result.json), so rows run one call at a time add up.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml

from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.common.stages import StageRunner, python_module

# What the rows measure (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = ("mling/train.py", "mling/training/", "mling/configs/demo.yaml")
SIGMOID = {"loss": {"loss": "sigmoid"}, "model": {"temperature_init": 0.1}}
# name -> (changes to the demo preset, by section, what the row tests)
ROWS: dict[str, tuple[dict, str]] = {
    "softmax": ({}, "the preset as `make demo` trains it: ALIGN's softmax loss, batch 128"),
    "sigmoid": (SIGMOID, "SigLIP's sigmoid loss, temperature from 0.1, bias from -10"),
    "softmax-batch-32": ({"data": {"batch_size": 32}}, "the softmax loss at a batch of 32"),
    "sigmoid-batch-32": (
        {**SIGMOID, "data": {"batch_size": 32}},
        "the sigmoid loss at a batch of 32",
    ),
}
MODELS = {"mling": "multilingual, filtered", "en": "English", "mling-unfiltered": "unfiltered"}
LANGUAGES = ("en", "de", "fr", "cs")


def preset(changes: dict) -> dict:
    """The demo preset with `changes` merged in, section by section."""
    from mling.training.recipe import preset_path

    values = yaml.safe_load(preset_path("demo").read_text(encoding="utf-8"))
    for section, fields in changes.items():
        values.setdefault(section, {}).update(fields)
    return values


def run_row(name: str, args: argparse.Namespace, code: dict) -> dict:
    """Run the demo with row `name`'s preset; returns and keeps its result."""
    from mling.demo_report import mr_table

    changes, what = ROWS[name]
    folder = args.output / "rows" / name
    path = args.output / "presets" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(preset(changes), sort_keys=False), encoding="utf-8")
    demo = ["--config", str(path), "--output", str(folder / "demo"), "--seed", str(args.seed)]
    stages = StageRunner("loss_ablation.py", args.output / "logs")
    shown = f"python mling/demo.py {' '.join(demo)}"
    seconds = stages.run(name, python_module("mling.demo", demo, shown=shown))
    evaluation = json.loads((folder / "demo" / "eval" / "report.json").read_text())
    result = {
        "row": name,
        "what": what,
        "changes": changes,
        "command": shown,
        "seed": args.seed,
        "seconds": seconds,
        "provenance": code | {"label": f"row {name}"},
        "mR": mr_table(evaluation),
    }
    (folder / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    # config
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output/loss_ablation/demo"))
    parser.add_argument(
        "--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}"
    )
    parser.add_argument("--rerun", action="store_true", help="run rows measured before again")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [name for name in args.rows.split(",") if name]
    unknown = [name for name in names if name not in ROWS]
    if unknown:
        parser.error(f"unknown rows {', '.join(unknown)}; rows: {', '.join(ROWS)}")

    # rows: each run once, kept; the table holds every row measured with this seed
    for name in names:
        kept = args.output / "rows" / name / "result.json"
        if args.rerun or not kept.is_file():
            run_row(name, args, code_state(MEASURED_MODULES))
    results = []
    for name in ROWS:
        kept = args.output / "rows" / name / "result.json"
        if kept.is_file() and json.loads(kept.read_text())["seed"] == args.seed:
            results.append(json.loads(kept.read_text()))

    # report: mR per language of each model, the rows side by side
    table = [
        [
            r["row"],
            model,
            *(r["mR"][model].get(lang) for lang in LANGUAGES),
            statistics.mean(r["mR"][model][lang] for lang in LANGUAGES if lang in r["mR"][model]),
        ]
        for model in MODELS
        for r in results
    ]
    markdown = [
        f"# The loss on the `make demo` recipe (seed {args.seed})",
        "",
        markdown_table(["row", "model", *LANGUAGES, "mean"], table),
        "",
        "mR (mean of R@1/5/10 in both directions) on the synthetic Multi30k test set; random "
        "ranking gives about 1. Rows: "
        + "; ".join(f"`{r['row']}` {r['what']}" for r in results)
        + ".",
        "",
        "```bash",
        *(r["command"] for r in results),
        "```",
    ]
    data = {"provenance": code_state(MEASURED_MODULES), "seed": args.seed, "rows": results}
    write_report(args.output, "ablation", data, "\n".join(markdown))
    print("\n".join(markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
