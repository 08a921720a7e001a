"""`make demo-emoji` in miniature, on the committed emoji fixture: the set, its vocabulary, both
models, the evaluation in every language of the set and the summary that judges the targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mling.demo_emoji
from mling.demo_emoji import TARGETS, summarize

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "emoji"


def _report(scores: dict[str, dict[str, float]], images: int = 100) -> dict:
    """An evaluation report.json's parts that the summary reads (mR in percent)."""
    return {
        "models": {m: {lang: {"mR": v} for lang, v in by.items()} for m, by in scores.items()},
        "data": {lang: {"images": images} for lang in scores["mling"]},
    }


def test_targets_are_judged_on_the_numbers():
    scores = {
        "en": {"en": 25.0, "ja": 0.5, "ar": 0.4},
        "mling": {"en": 16.0, "ja": 14.0, "ar": 12.0},
    }
    summary = summarize(_report(scores), None)
    assert summary["en_model_en_mR"] == pytest.approx(25.0)
    assert summary["mling_over_en"] == pytest.approx(16 / 25)
    assert summary["mling_trained"]["worst_language"] == "ar"
    assert summary["mling_trained"]["worst_ratio"] == pytest.approx(12 / 16)
    assert summary["met"] == {"en_mR": True, "mling_over_en": True, "worst_over_english": False}
    assert summary["chance_mR"] == pytest.approx(100 * (1 + 5 + 10) / 3 / 100)
    # a language the multilingual model never trained on is reported apart, not judged
    trained_only = summarize(_report(scores), ["en", "ja"])
    assert trained_only["trained_languages"] == 2
    assert trained_only["mling_trained"]["worst_language"] == "ja"
    assert trained_only["met"]["worst_over_english"] is True
    assert trained_only["mling_unseen_median"] == pytest.approx(12.0)
    assert TARGETS == {"en_mR": 20.0, "mling_over_en": 0.6, "worst_over_english": 0.8}


@pytest.mark.slow
def test_demo_emoji_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    argv = ["--output", str(out), "--cache", str(FIXTURE), "--pins", str(FIXTURE / "pins.json")]
    argv += ["--config", "tiny", "--steps", "3", "--vocab-size", "300", "--min-names", "3"]
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
    assert pq.read_table(out / "pairs-mling").num_rows == emoji_set["pairs"]
    text = (out / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# The emoji demo") and "| target | wanted | measured | met |" in text
    # the mR the summary judges is the evaluation's, in percent
    assert summary["en_model_en_mR"] == pytest.approx(evaluation["models"]["en"]["en"]["mR"])
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
