"""The transfer ablation's commands and merged reports, and the LiT step benchmark's batch:
hand-written inputs, no training."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from benchmarks import transfer_ablation as ablation
from benchmarks.bench_lit_step import random_batch
from mling.demo_emoji import NAMES_PER_DRAWING, TRANSFER_FLAGS
from mling.training.recipe import load_recipe
from tests.helpers.one_line import error_line


def args_for() -> argparse.Namespace:
    return argparse.Namespace(demo=Path("demo"), output=Path("out"), config="emoji", steps=50,
                              seed=0, pool_min_images=300, device="cpu")  # fmt: skip


def flag_value(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command else None


def test_the_recipe_row_is_the_demos_multilingual_command():
    command = ablation.train_command(args_for(), "recipe")
    assert command[:5] == ["mling/train.py", "--train-data", "demo/pairs-mling", "--output-dir",
                           "out/rows/recipe/mling"]  # fmt: skip
    assert " ".join(TRANSFER_FLAGS) in " ".join(command)
    assert (
        flag_value(command, "--init-image") == flag_value(command, "--init-text") == "demo/en/model"
    )
    assert flag_value(command, "--captions-per-image") == str(NAMES_PER_DRAWING)
    assert flag_value(command, "--positives") == "image_id"


@pytest.mark.parametrize(
    ("row", "flag", "value"),
    [
        ("cache-off", "--image-cache", "false"),
        ("crop-random", "--crop", "random"),
        ("text-text-1", "--text-text-weight", "1"),
        ("text-init-off", "--init-text", None),
        ("names-4", "--captions-per-image", "4"),
        ("names-1", "--captions-per-image", "1"),
    ],
)
def test_each_row_changes_one_flag_of_the_recipe(row, flag, value):
    recipe = ablation.train_command(args_for(), "recipe")
    changed = ablation.train_command(args_for(), row)
    assert flag_value(changed, flag) == value
    assert changed.count(flag) == (value is not None)  # replaced, never given twice
    differing = {f for f in set(recipe) | set(changed) if f.startswith("--")
                 and flag_value(recipe, f) != flag_value(changed, f)}  # fmt: skip
    assert differing == {flag, "--output-dir"}


def report(mling_pool: dict, images: int = 300) -> dict:
    """An evaluation report.json of one model, `mling`, on en, de and ja (ja held out)."""
    own = {lang: {"mR": score + 5} for lang, score in mling_pool.items()}
    return {
        "data": {lang: {"images": 320} for lang in mling_pool},
        "models": {"mling": own},
        "shared_pool": {"images": images, "languages": ["en", "de", "ja"], "refused": None,
                        "apart": {}, "models": {"mling": {lang: {"mR": s} for lang, s
                                                          in mling_pool.items()}}},
    }  # fmt: skip


def test_a_row_is_judged_against_the_demos_english_model_on_the_shared_pool():
    demo = report({"en": 10.0, "de": 9.0, "ja": 8.0})
    demo["models"]["en"] = {"en": {"mR": 45.0}, "ja": {"mR": 3.0}}  # own pools: not used
    demo["shared_pool"]["models"]["en"] = {"en": {"mR": 40.0}, "ja": {"mR": 2.0}}
    row = report({"en": 36.0, "de": 27.0, "ja": 12.0})
    assert ablation.pool_difference(row, demo) is None
    merged = ablation.merged_report(row, demo, None)
    summary = ablation.summarize(merged, ("ja",))
    assert summary["en_model_en_mR"] == 40.0 and summary["mling_model_en_mR"] == 36.0
    assert summary["mling_over_en"] == pytest.approx(0.9)
    assert summary["mling_trained"]["worst_language"] == "de"  # ja is held out
    assert summary["mling_trained"]["worst_ratio"] == pytest.approx(0.75)
    assert summary["heldout"]["ja"] == {"mling": 12.0, "en_model": 2.0, "pool": "shared"}
    assert "en" not in row["models"]  # the row's own report is left as it was


def test_a_row_on_another_pool_is_not_judged():
    demo = report({"en": 10.0, "de": 9.0, "ja": 8.0})
    demo["models"]["en"] = {"en": {"mR": 45.0}}
    demo["shared_pool"]["models"]["en"] = {"en": {"mR": 40.0}}
    row = report({"en": 36.0, "de": 27.0, "ja": 12.0}, images=250)
    difference = ablation.pool_difference(row, demo)
    assert difference == "250 drawings, the demo's 300"
    summary = ablation.summarize(ablation.merged_report(row, demo, difference), ("ja",))
    assert summary["judged_on"].startswith("the row's pool is not the demo's")
    assert summary["en_model_en_mR"] == 45.0  # each language on its own drawings


def test_a_folder_that_is_not_a_finished_demo_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "vocab").mkdir()
    assert ablation.main(["--demo", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    err = error_line(capsys, "transfer_ablation.py", "lacks vocab/tokenizer.json")
    assert "en/model/config.json" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("names", [1, 3])
def test_the_lit_benchmarks_batch_is_padded_as_the_loader_pads(names):
    recipe = load_recipe("emoji")
    batch = random_batch(recipe, names, vocab_size=1000, seed=0)
    rows = recipe.data.batch_size
    mask = batch["attention_mask"].reshape(rows * names, -1)
    lengths = mask.sum(dim=1)
    width = mask.shape[1]
    assert batch["input_ids"].shape == ((rows, width) if names == 1 else (rows, names, width))
    assert lengths.min() >= 4 and lengths.max() <= 20
    assert width % 8 == 0 and width - 8 < lengths.max() <= width  # the longest, rounded up to 8
    assert (mask == (batch["input_ids"].reshape(rows * names, -1) > 0)).all()  # [PAD] 0 only
    size = recipe.model.image_size
    assert batch["pixel_values"].dtype == torch.uint8
    assert batch["pixel_values"].shape == (rows, 3, size, size)


def test_the_lit_step_benchmark_runs_its_four_steps(tmp_path, monkeypatch):
    # One timed step of each variant on the tiny preset: the benchmark still drives the model
    # as train.py does (its forward's outputs, the transfer recipe's loss).
    from benchmarks import bench_lit_step

    monkeypatch.setattr(bench_lit_step, "WARMUP", 0)
    out = tmp_path / "lit_step.json"
    argv = ["--config", "tiny", "--names", "2", "--repeats", "1", "--steps", "1"]
    assert bench_lit_step.main([*argv, "--vocab-size", "300", "--output", str(out)]) in (0, None)
    assert out.with_suffix(".md").read_text().count("| 2 |") == 1
