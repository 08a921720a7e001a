"""Language figures: kept rows labelled exactly, dropped rows' languages estimated from a seeded sample.

The estimate's counts, intervals and rounding are checked by hand; the kept set and its labels are
those of the exact mode (`--language-sample all`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mling.filtering.filter_report import build
from mling.filtering.language_estimate import (
    Estimate,
    count_interval,
    estimate_counts,
    largest_remainder,
    wilson_interval,
)
from mling.filtering.language_pass import LanguageSample, row_keys, sample_thresholds
from mling.filtering.pipeline import main
from tests.helpers.filter_cases import outcomes, pair_row
from tests.helpers.multilingual import CAPTIONS
from tests.helpers.one_line import error_line

# --- the estimate, by hand ---------------------------------------------------------------------


def test_wilson_interval_by_hand():
    # 5 of 10: p = 0.5, z = 1.96; center (0.5 + 0.192) / 1.384 = 0.5,
    # half 1.96 * sqrt(0.025 + 0.0096) / 1.384 = 0.2634
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    # None of 10: the upper bound is z^2 / (n + z^2) = 3.8415 / 13.8415
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-5))
    # The whole population sampled: the proportion itself
    assert wilson_interval(5, 10, population=10) == (0.5, 0.5)
    # 6 of 10 out of 100: z scaled by sqrt(90 / 99) to 1.8688; (0.3235, 0.8247)
    low, high = wilson_interval(6, 10, population=100)
    assert low == pytest.approx(0.3235, abs=1e-4) and high == pytest.approx(0.8247, abs=1e-4)


def test_largest_remainder_adds_up():
    # 7 rows over three equal shares of 2.33: floors 2 + 2 + 2, the one left by name
    assert largest_remainder({"en": 7 / 3, "ja": 7 / 3, "ar": 7 / 3}, 7) == {
        "en": 2,
        "ja": 2,
        "ar": 3,
    }
    # 10 rows: 3.6 -> 4 and 6.4 -> 6, the larger remainder first
    assert largest_remainder({"ru": 3.6, "th": 6.4}, 10) == {"ru": 4, "th": 6}


def test_estimate_of_one_reason_by_hand():
    # 10 of 100 dropped rows labelled: 6 en, 3 ja, 1 ar -> 60, 30, 10 rows; en's interval is
    # 100 * (0.3235, 0.8247) -> 32 to 83 rows
    estimates = estimate_counts({"en": 6, "ja": 3, "ar": 1}, total=100)
    assert estimates == {
        "en": Estimate(60, 32, 83),
        "ja": Estimate(30, 11, 60),
        "ar": Estimate(10, 1, 39),
    }
    # 3 of 7 rows labelled, one each: 2.33 each, rounded to 2 + 2 + 3 = 7
    counts = {k: e.count for k, e in estimate_counts({"en": 1, "ja": 1, "ar": 1}, 7).items()}
    assert counts == {"en": 2, "ja": 2, "ar": 3} and sum(counts.values()) == 7
    # never fewer rows than seen, never more than the total less the others seen
    assert count_interval(1, 3, 4) == (1, 2)
    # every row labelled: exact
    assert estimate_counts({"el": 2, "hi": 5}, 7) == {
        "el": Estimate(2, 2, 2),
        "hi": Estimate(5, 5, 5),
    }


def test_report_marks_estimates_and_adds_up():
    totals = {"kept": 4, "image_too_small": 100, "too_few_words": 2}
    groups = {
        ("kept", "en"): {"rows": 3},
        ("kept", "ja"): {"rows": 1},
        # 10 of image_too_small's 100 rows labelled, both of too_few_words' 2
        ("image_too_small", "en"): {"rows": 6, "image_too_small": 6, "too_few_words": 1},
        ("image_too_small", "ja"): {"rows": 3, "image_too_small": 3},
        ("image_too_small", "ar"): {"rows": 1, "image_too_small": 1},
        ("too_few_words", "ja"): {"rows": 2, "too_few_words": 2},
    }
    settings = {"engine": "duckdb", "language_id": True, "language_sample": 10, "language_seed": 7}
    aggregates = {"by_reason": totals, "vocabulary": {}}
    data, markdown, _ = build(aggregates, groups, 106, 4, [("pre-pass", 1.0)], settings)
    languages = {e["language"]: e for e in data["languages"]}
    assert languages["en"]["rows"] == 3 + 60 and languages["en"]["rows_interval"] == [35, 86]
    assert languages["ja"]["dropped"] == {"image_too_small": 30, "too_few_words": 2}
    assert languages["ja"]["dropped_interval"]["too_few_words"] == [2, 2]  # labelled whole
    assert languages["ar"]["retention"] == 0.0 and languages["ar"]["kept"] == 0
    assert sum(e["rows"] for e in data["languages"]) == 106
    # en fails too_few_words on its own in 1 of 10 sampled image_too_small rows: 10 of its 63
    assert languages["en"]["filter_retention"]["too_few_words"] == pytest.approx(53 / 63)
    method = data["language_figures"]
    assert method["kept"] == "exact" and method["dropped"] == "estimated"
    assert method["sampled_by_reason"] == {"image_too_small": 10, "too_few_words": 2}
    assert "Estimated" in markdown and "seed 7" in markdown and "63 [35–86]" in markdown


# --- the sample -----------------------------------------------------------------------------------


def test_sample_takes_exactly_n_per_reason_by_seeded_hash(tmp_path):
    ids = np.arange(3000)
    assert len(set(row_keys(ids, 0).tolist())) == 3000  # a bijection: no ties
    assert not np.array_equal(row_keys(ids, 0), row_keys(ids, 1))
    reasons = [None, "rare_token", "too_few_words"] * 1000
    path = tmp_path / "decisions.parquet"
    pq.write_table(pa.table({"row_id": ids, "reason": pa.array(reasons, pa.string())}), path)
    thresholds = sample_thresholds([path], LanguageSample(per_reason=25, seed=3))
    keys = row_keys(ids, 3)
    for name in ("rare_token", "too_few_words"):
        rows = np.array([r == name for r in reasons])
        assert int((keys[rows] <= np.uint64(thresholds[name])).sum()) == 25
    whole = sample_thresholds([path], LanguageSample(per_reason=1000, seed=3))
    assert whole == {"rare_token": (1 << 64) - 1, "too_few_words": (1 << 64) - 1}
    assert sample_thresholds([path], LanguageSample(per_reason=None)) == {}


# --- end to end -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multilingual_runs(tmp_path_factory):
    """16 languages x 6 captions x 3 copies, each kept (300x400), too small (100x100) and too
    wide (1200x300): 288 rows per outcome; labelled exactly, and from 20 per reason."""
    tmp_path = tmp_path_factory.mktemp("language")
    rows = []
    for language, captions in CAPTIONS.items():
        for i, caption in enumerate(captions):
            for copy in range(3):
                for outcome, (width, height) in {
                    "kept": (300, 400),
                    "small": (100, 100),
                    "wide": (1200, 300),
                }.items():
                    key = f"{language}-{i}-{copy}-{outcome}"
                    rows.append(
                        pair_row(key, caption, f"https://img.example/{key}.jpg", width, height)
                    )
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in" / "part-0.parquet")

    def run(name: str, *extra: str) -> Path:
        out = tmp_path / name
        argv = ["--input", str(tmp_path / "in"), "--output", str(out), "--write-rejected"]
        assert main([*argv, "--max-images", "1000", "--quiet", *extra]) == 0
        return out

    return (
        len(rows),
        run("exact", "--language-sample", "all"),
        run("sampled", "--language-sample", "20"),
        run("reseeded", "--language-sample", "20", "--language-seed", "1"),
    )


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _tables(out: Path) -> tuple[pa.Table, pa.Table]:
    kept = pq.read_table(sorted(out.glob("part-*.parquet")))
    rejected = pq.read_table(sorted((out / "rejected").glob("part-*.parquet")))
    return kept, rejected


def test_kept_set_and_labels_are_those_of_the_exact_mode(multilingual_runs):
    _, exact, sampled, reseeded = multilingual_runs
    assert outcomes(sampled) == outcomes(exact) == outcomes(reseeded)
    kept_exact, _ = _tables(exact)
    for out in (sampled, reseeded):
        kept, _ = _tables(out)
        assert kept.equals(kept_exact)  # same rows, same language and language_score
    assert kept_exact.num_rows == 288 and kept_exact.column("language").null_count == 0
    assert len(set(kept_exact.column("language").to_pylist())) >= 10


def test_sampled_rejected_rows_and_their_estimate(multilingual_runs):
    _, _, sampled, reseeded = multilingual_runs
    report = _report(sampled)
    _, rejected = _tables(sampled)
    labelled = rejected.filter(rejected.column("language").is_valid()).to_pylist()
    by_reason: dict[str, Counter] = {}
    for row in labelled:
        by_reason.setdefault(row["reason"], Counter())[row["language"]] += 1
    assert {reason: sum(c.values()) for reason, c in by_reason.items()} == {
        "image_too_small": 20,
        "aspect_ratio": 20,
    }
    languages = {e["language"]: e for e in report["languages"]}
    for reason, sample in by_reason.items():
        expected = estimate_counts(sample, 288)
        for language, estimate in expected.items():
            if estimate.count:
                assert languages[language]["dropped"][reason] == estimate.count
            interval = [estimate.low, estimate.high]
            assert languages[language]["dropped_interval"][reason] == interval
        total = sum(e["dropped"].get(reason, 0) for e in report["languages"])
        assert total == report["dropped_by_reason"][reason] == 288
    method = report["language_figures"]
    assert method["dropped"] == "estimated" and method["sample_per_reason"] == 20
    assert method["labelled_dropped_rows"] == 40 and method["seed"] == 0
    markdown = (sampled / "report.md").read_text()
    assert "Estimated" in markdown and "from a seeded random sample of 40 of the 576" in markdown
    _, other = _tables(reseeded)
    keys = rejected.filter(rejected.column("language").is_valid()).column("key").to_pylist()
    other_keys = other.filter(other.column("language").is_valid()).column("key").to_pylist()
    assert set(keys) != set(other_keys)  # another seed, another sample


def test_exact_mode_counts_every_row(multilingual_runs):
    rows, exact, sampled, _ = multilingual_runs
    report = _report(exact)
    kept, rejected = _tables(exact)
    assert rejected.column("language").null_count == 0
    counts = Counter(kept.column("language").to_pylist())
    for row in rejected.to_pylist():
        counts[row["language"]] += 1
    assert {e["language"]: e["rows"] for e in report["languages"]} == dict(counts)
    assert all(e["rows_interval"] == [e["rows"], e["rows"]] for e in report["languages"])
    assert report["language_figures"]["dropped"] == "exact"
    assert "all figures exact" in (exact / "report.md").read_text()
    # the exact figures lie inside the sampled run's intervals
    estimated = {e["language"]: e for e in _report(sampled)["languages"]}
    for entry in report["languages"]:
        low, high = estimated[entry["language"]]["rows_interval"]
        assert low <= entry["rows"] <= high, entry["language"]
    assert sum(e["rows"] for e in _report(sampled)["languages"]) == rows


def test_labels_with_several_workers_are_those_of_one(multilingual_runs, tmp_path, monkeypatch):
    # Small features files, so language ID has several files to label and remember across.
    import mling.filtering.language_pass as language_pass
    import mling.filtering.pipeline as pipeline

    monkeypatch.setattr(pipeline, "chunk_rows_for", lambda rows, workers: 100)
    sent: dict[str, list[list[str]]] = {}  # workers -> the lines of each piece sent to them
    forked_map = language_pass.forked_map

    def recorded(function, items, context, workers):
        def passing():
            for item in items:
                sent[str(workers)].append(item.to_pylist())
                yield item

        return forked_map(function, passing(), context, workers)

    monkeypatch.setattr(language_pass, "forked_map", recorded)
    source = multilingual_runs[1].parent / "in"
    runs = {}
    for workers in ("1", "3"):
        sent[workers] = []
        out = tmp_path / f"workers-{workers}"
        argv = ["--input", str(source), "--output", str(out), "--write-rejected", "--quiet"]
        argv += ["--max-images", "1000", "--batch-rows", "50", "--language-sample", "20"]
        assert main([*argv, "--workers", workers]) == 0
        runs[workers] = out
    one, three = _tables(runs["1"]), _tables(runs["3"])
    assert one[0].equals(three[0]) and one[1].equals(three[1])  # kept, rejected: same labels
    assert _report(runs["1"])["languages"] == _report(runs["3"])["languages"]
    # 864 rows in files of 100 (two batches of 50): each file's new lines split in three
    assert len(sent["3"]) >= 3 * 6 and max(map(len, sent["3"])) - min(map(len, sent["3"])) <= 40
    # one process labels each distinct line once, across its 9 files too (the 96 captions
    # repeat in every file)
    lines = [line for piece in sent["1"] for line in piece]
    assert len(lines) == len(set(lines)) and len(sent["1"]) >= 6


@pytest.mark.parametrize("value", ["0", "-3", "some"])
def test_language_sample_must_be_a_count_or_all(tmp_path, value, capsys):
    argv = ["--input", str(tmp_path), "--output", str(tmp_path / "o")]
    assert main([*argv, "--language-sample", value]) == 2
    assert error_line(capsys, "filter.py").startswith("filter.py: argument --language-sample")
