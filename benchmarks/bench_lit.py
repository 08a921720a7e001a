"""LiT from the English model: a frozen image tower and a new multilingual text tower.

    python -m benchmarks.bench_lit [--demo demo-output] [--steps 300] [--rounds 3]

Two measurements, written to bench-output/lit/bench_lit.{json,md}:

1. Step cost: `mling/train.py` itself on toy shards with the demo preset, a full step against a
   LiT step (`--init-image SRC --freeze image`: the image tower runs forward only, without
   autograd), same model, batch and optimizer; runs alternate (full, LiT, full, ...) and the
   ratio is the median over rounds (target: at most 0.7).
2. Steps to the multilingual model (needs `make demo` first): from the demo's `en` model, its
   image tower frozen, a multilingual text tower trained from scratch on the filtered pairs in
   all languages with the demo's vocabulary, evaluated on the demo's Multi30k-layout test set
   every `--eval-every` steps; beside it the same run from scratch (`mling`'s recipe), evaluated
   at the same steps. Target: LiT within 2 points of the demo `mling` model's mean mR
   (en/de/fr/cs, after its 600 steps) in at most half its steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from transformers import AutoTokenizer

from benchmarks.bench_train import full_windows
from mling import train
from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.training.eval_hook import eval_reports
from mling.training.model import build_model
from mling.training.model_export import export_model
from mling.training.recipe import load_recipe
from tests.helpers.toy_pairs import build_toy_tokenizer, write_toy_shards

LANGUAGES = ("en", "de", "fr", "cs")
# What the benchmark measures (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = (
    "mling/train.py",
    "mling/training/",
    "mling/evaluation/",
    "mling/configs/demo.yaml",
)


def step_seconds(argv: list[str], output: Path, batch_size: int, window: int) -> float:
    """Median seconds per step of one train.py run: 3 windows after a warm-up one."""
    return statistics.median(full_windows(argv, output, batch_size, windows=3, window=window))


def step_cost(config: str, rounds: int, window: int, work: Path) -> dict:
    recipe = load_recipe(config, {"num_workers": 0})
    batch = recipe.data.batch_size
    tokenizer = build_toy_tokenizer(work / "vocab")
    write_toy_shards(work / "pairs", 4 * batch, side=recipe.model.image_size + 16, shard_rows=batch)
    align = build_model(recipe.model, len(AutoTokenizer.from_pretrained(tokenizer)), seed=1)
    source = export_model(
        align, AutoTokenizer.from_pretrained(tokenizer), recipe.model.image_size, work / "source"
    )
    base = ["--config", config, "--train-data", str(work / "pairs"), "--tokenizer", str(tokenizer)]
    base += ["--num-workers", "0"]
    lit = ["--init-image", str(source), "--freeze", "image"]
    full_s, lit_s = [], []
    for k in range(rounds):
        full_s.append(step_seconds(base, work / f"full-{k}", batch, window))
        lit_s.append(step_seconds([*base, *lit], work / f"lit-{k}", batch, window))
    ratios = [t / f for t, f in zip(lit_s, full_s, strict=True)]
    return {"config": config, "batch": batch, "full_s": full_s, "lit_s": lit_s, "ratios": ratios}


def mean_mr(report: Path) -> dict[str, float]:
    """{language: mR} of the only model in an evaluation report, and the mean over LANGUAGES."""
    (by_language,) = json.loads(report.read_text())["models"].values()
    found = {lang: by_language[lang]["mR"] for lang in LANGUAGES}
    return found | {"mean": statistics.fmean(found.values())}


def curve(demo: Path, name: str, extra: list[str], steps: int, every: int, out: Path) -> dict:
    """Train on the demo's filtered pairs, evaluated every `every` steps: {step: mR by language}."""
    evaluation = f"--multi30k {demo / 'synthetic/multi30k'} --images {demo / 'synthetic/images'}"
    evaluation += " --model {model} --output {output} --device cpu --no-cache"
    argv = ["--config", "demo", "--train-data", str(demo / "filtered")]
    argv += ["--tokenizer", str(demo / "vocab"), "--output-dir", str(out / name)]
    argv += ["--max-steps", str(steps), "--save-every", "0", "--eval-every", str(every)]
    argv += ["--eval-module", "mling.evaluation.multi30k", "--eval-args", evaluation, *extra]
    argv += ["--overwrite"]  # a rerun replaces the benchmark's own run
    if train.main(argv) != 0:
        raise SystemExit(f"bench_lit.py: training {name} failed (above); its run: {out / name}")
    reports = eval_reports(out / name)  # evals/step-N/report/report.json, by step
    if len(reports) < steps // every:  # the hook reports a failed evaluation and trains on
        raise SystemExit(f"bench_lit.py: {len(reports)} of {steps // every} evaluations of "
                         f"{name} reported in {out / name}/evals; see the hook's lines above")  # fmt: skip
    return {step: mean_mr(report) for step, report in reports.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, default=Path("demo-output"))
    parser.add_argument("--steps", type=int, default=300, help="LiT steps (half the demo's)")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="full/LiT step-time pairs")
    parser.add_argument("--window", type=int, default=5, help="steps per timed window")
    parser.add_argument("--output", type=Path, default=Path("bench-output/lit"))
    args = parser.parse_args(argv)
    code = code_state(MEASURED_MODULES)

    with tempfile.TemporaryDirectory(prefix="bench_lit-") as tmp:
        cost = step_cost("demo", args.rounds, args.window, Path(tmp))
    ratio = statistics.median(cost["ratios"])
    lines = [
        "# LiT from the English model",
        "",
        f"## Step cost (`--config demo`, batch {cost['batch']}, toy shards, medians of "
        f"{args.window}-step windows)",
        "",
        markdown_table(
            ["round", "full step s", "LiT step s", "LiT / full"],
            [
                [k + 1, f"{f:.3f}", f"{t:.3f}", f"{r:.2f}"]
                for k, (f, t, r) in enumerate(
                    zip(cost["full_s"], cost["lit_s"], cost["ratios"], strict=True)
                )
            ],
        ),
        "",
        f"Median LiT / full: **{ratio:.2f}** (target at most 0.70: "
        f"{'met' if ratio <= 0.7 else 'not met'}).",
        "",
    ]
    data = {"step_cost": cost | {"median_ratio": ratio}, "provenance": code}

    if (args.demo / "en" / "model").is_dir() and (args.demo / "eval" / "report.json").is_file():
        demo = args.demo.resolve()
        target = json.loads((demo / "eval" / "report.json").read_text())["models"]["mling"]
        target_mean = statistics.fmean(target[lang]["mR"] for lang in LANGUAGES)
        lit_args = ["--init-image", str(demo / "en" / "model"), "--freeze", "image"]
        runs = {
            "LiT from en (image frozen)": curve(
                demo, "lit", lit_args, args.steps, args.eval_every, args.output
            ),
            "from scratch": curve(demo, "scratch", [], args.steps, args.eval_every, args.output),
        }
        reached = {
            name: next((s for s, m in sorted(c.items()) if m["mean"] >= target_mean - 2), None)
            for name, c in runs.items()
        }
        rows = [
            [name, step, *(f"{m[lang]:.1f}" for lang in LANGUAGES), f"{m['mean']:.1f}"]
            for name, c in runs.items()
            for step, m in sorted(c.items())
        ]
        lit_step = reached["LiT from en (image frozen)"]
        lines += [
            f"## Steps to the multilingual model ({args.demo}, `--config demo`)",
            "",
            f"Target: the demo `mling` model's mean mR over en/de/fr/cs after 600 steps, "
            f"{target_mean:.1f}, within 2 points ({target_mean - 2:.1f}), in at most 300 steps.",
            "",
            markdown_table(["run", "step", *LANGUAGES, "mean"], rows),
            "",
            *(
                f"- {name}: {'reaches it at step ' + str(s) if s else 'does not reach it'} "
                f"(of {args.steps})."
                for name, s in reached.items()
            ),
            "",
            f"LiT target {'met' if lit_step and lit_step <= 300 else 'not met'}.",
        ]
        data |= {"target_mean_mr": target_mean, "curves": runs, "reached": reached}
    else:
        lines += [f"(No {args.demo}/en/model: run `make demo` first for the steps measurement.)"]
    paths = write_report(args.output, "bench_lit", data, "\n".join(lines))
    print("\n".join(lines))
    print(f"bench_lit.py: report at {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
