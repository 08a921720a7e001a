"""`make demo-emoji` in miniature, on the committed emoji fixture: the set, its vocabulary, both
models, the evaluation in every language of the set and the summary that judges the targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mling.demo_emoji
from mling.demo_emoji import TARGETS, summarize

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "emoji"


def _report(scores: dict[str, dict[str, float]], images: int = 100, pool=None) -> dict:
    """An evaluation report.json's parts that the summary reads (mR in percent); `pool`:
    {model: {language: mR}} on the shared pool of `images` drawings, or None for no pool."""
    report = {
        "models": {m: {lang: {"mR": v} for lang, v in by.items()} for m, by in scores.items()},
        "data": {lang: {"images": images} for lang in scores["mling"]},
    }
    if pool is not None:
        report["shared_pool"] = {
            "images": images,
            "refused": None,
            "apart": {"ia": 47},
            "models": {m: {lang: {"mR": v} for lang, v in by.items()} for m, by in pool.items()},
        }
    return report


def test_targets_are_judged_on_the_shared_pool():
    own = {  # ia names 47 drawings: among so few candidates it scores far above English
        "en": {"en": 25.0, "ja": 0.5, "ar": 0.4, "gl": 1.0, "ia": 30.0},
        "mling": {"en": 24.0, "ja": 22.0, "ar": 19.0, "gl": 15.0, "ia": 40.0},
    }
    pool = {
        "en": {"en": 26.0, "ja": 0.6, "ar": 0.5, "gl": 1.2},
        "mling": {"en": 25.0, "ja": 23.0, "ar": 20.0, "gl": 16.0},
    }
    seconds = {"training en": 300.0, "training mling": 150.0, "total": 840.0}
    summary = summarize(_report(own, 500, pool), ("gl",), seconds)
    assert summary["judged_on"] == "shared pool" and summary["apart"] == {"ia": 47}
    assert summary["en_model_en_mR"] == pytest.approx(26.0)  # the pool's, not the own pool's
    assert summary["mling_over_en"] == pytest.approx(25 / 26)
    fair = summary["mling_trained"]  # gl is held out: not judged with the trained languages
    assert (fair["languages"], fair["worst_language"]) == (3, "ar")
    assert fair["worst_ratio"] == pytest.approx(20 / 25)
    assert summary["median_over_english"] == pytest.approx(23 / 25)
    assert summary["below_by_script"] == {"Arab": ["ar"]}  # 20 < 0.85 x 25
    assert summary["heldout"] == {"gl": {"mling": 16.0, "en_model": 1.2, "pool": "shared"}}
    assert summary["training_ratio"] == pytest.approx(0.5)
    assert summary["chance_mR"] == pytest.approx(100 * (1 + 5 + 10) / 3 / 500)
    assert summary["met"] == {
        "en_mR": True,
        "mling_over_en": True,
        "worst_over_english": False,
        "median_over_english": True,
        "minutes": True,
    }
    assert set(summary["met"]) == set(TARGETS)


def test_without_a_shared_pool_nothing_is_judged_met():
    scores = {"en": {"en": 25.0, "ja": 0.5}, "mling": {"en": 25.0, "ja": 25.0}}
    summary = summarize(_report(scores), ())
    assert summary["judged_on"] == "the evaluation made none"
    assert not any(v for k, v in summary["met"].items() if k != "minutes")


@pytest.mark.slow
def test_demo_emoji_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    argv = ["--output", str(out), "--cache", str(FIXTURE), "--pins", str(FIXTURE / "pins.json")]
    argv += ["--config", "tiny", "--steps", "3", "--vocab-size", "300", "--min-names", "3"]
    argv += ["--heldout-languages", "ja", "--captions-per-image", "2", "--pool-min-images", "2"]
    assert mling.demo_emoji.main(argv) == 0

    summary = json.loads((out / "report.json").read_text(encoding="utf-8"))
    evaluation = json.loads((out / "eval" / "report.json").read_text(encoding="utf-8"))
    emoji_set = json.loads((out / "emoji-set" / "report.json").read_text(encoding="utf-8"))
    # every language of the set evaluated, for both models
    assert set(evaluation["models"]) == {"en", "mling"}
    assert sorted(evaluation["languages"]) == sorted(emoji_set["per_language"])
    assert summary["languages"] == len(emoji_set["per_language"]) == 11
    assert set(summary["met"]) == set(TARGETS)
    for name in ("en", "mling"):
        metrics = (out / name / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        assert json.loads(metrics[-1])["step"] == 3
    # the English model trained on the English rows alone, the multilingual one on all of them
    import pyarrow.parquet as pq

    assert set(pq.read_table(out / "pairs-en", columns=["language"])["language"].to_pylist()) == {
        "en"
    }
    mling_rows = pq.read_table(out / "pairs-mling", columns=["language"])["language"]
    assert "ja" not in mling_rows.to_pylist()  # held out
    assert mling_rows.to_pylist() and len(mling_rows) < emoji_set["pairs"]
    # the multilingual model started from the English one, its image tower frozen and cached
    log = (out / "logs" / "train-mling.log").read_text(encoding="utf-8")
    assert "image-embedding cache image-cache/embeds.pt" in log
    assert (out / "mling" / "image-cache" / "embeds.pt").is_file()
    text = (out / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# The emoji demo") and "| target | wanted | measured | met |" in text
    # the mR the summary judges is the evaluation's, in percent
    judged = summary["judged_on"] == "shared pool"
    scores = evaluation["shared_pool"]["models"] if judged else evaluation["models"]
    assert summary["en_model_en_mR"] == pytest.approx(scores["en"]["en"]["mR"])
    assert 0 <= summary["en_model_en_mR"] <= 100


def test_the_heldout_sample_is_seeded_and_keeps_the_files_order(tmp_path):
    from mling.demo_emoji import sample_heldout

    lines = [json.dumps({"image": f"{i}.png", "captions": {"ar": ["قطة"]}}) for i in range(9)]
    source = tmp_path / "captions.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = sample_heldout(source, 4, 0, tmp_path / "a").read_text(encoding="utf-8").splitlines()
    again = sample_heldout(source, 4, 0, tmp_path / "b").read_text(encoding="utf-8").splitlines()
    assert first == again and len(first) == 4
    assert first == [line for line in lines if line in first]  # in the file's order
    everything = sample_heldout(source, 0, 0, tmp_path / "c").read_text(encoding="utf-8")
    assert everything.splitlines() == lines
