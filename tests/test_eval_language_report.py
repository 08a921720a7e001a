"""Per-language reports at 100+ languages: the fairness summary, chrF against English, script
groups, a chart with one legible row per language, and the retrieval JSON's shape kept."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import sacrebleu

from mling.common.scripts import script_code
from mling.evaluation.caption_sets import sets_from_captions
from mling.evaluation.fairness import fairness_summary
from mling.evaluation.language_report import (
    ROW_INCHES,
    language_dots,
    language_rows,
    script_groups,
    summary_section,
)
from mling.evaluation.retrieval_report import write_retrieval_report
from mling.evaluation.spelling import MAX_CAPTIONS, spelling_overlap
from tests.helpers.multilingual import CAPTIONS

# two models, four languages: every summary number below is checked by hand
SCORES = {
    "mling": {"en": 40.0, "de": 36.0, "fr": 30.0, "cs": 20.0},
    "en": {"en": 10.0, "de": 12.6, "fr": 9.0, "cs": 8.4},
}


def test_fairness_summary_by_hand():
    mling = fairness_summary(SCORES["mling"])
    # median of 20, 30, 36, 40 = (30 + 36) / 2; 0.85 x 40 = 34: fr and cs are under, de is not
    assert mling == {
        "languages": 4,
        "english": 40.0,
        "mean": 31.5,
        "median": 33.0,
        "worst": 20.0,
        "worst_language": "cs",
        "worst_ratio": 0.5,
        "below": ["cs", "fr"],
    }
    en = fairness_summary(SCORES["en"])
    # 0.85 x 10 = 8.5: cs (8.4) is under, fr (9.0) is not; median (9 + 10) / 2; mean 40 / 4
    assert (
        en["median"] == 9.5 and en["mean"] == pytest.approx(10.0) and en["worst_language"] == "cs"
    )
    assert en["worst_ratio"] == pytest.approx(0.84) and en["below"] == ["cs"]


def test_fairness_summary_without_english_or_scores():
    no_english = fairness_summary({"de": 30.0, "fr": None, "cs": 20.0})
    assert no_english["languages"] == 2 and no_english["english"] is None
    assert no_english["worst_language"] == "cs" and no_english["worst_ratio"] is None
    assert no_english["below"] == []
    assert fairness_summary({})["median"] is None


def test_summary_section_reads_as_computed():
    lines = "\n".join(summary_section(SCORES, italic=["en"])).splitlines()
    assert lines[0] == (
        "| model | languages | en | mean | median | worst | worst/en | below 0.85x en |"
    )
    assert "| mling | 4 | 40.0 | 31.5 | 33.0 | 20.0 (cs) | 0.50x | 2 |" in lines
    assert "| *en* | 4 | 10.0 | 10.0 | 9.5 | 8.4 (cs) | 0.84x | 1 |" in lines
    assert "- mling, below 0.85x en: cs, fr" in lines
    assert "- *en*, below 0.85x en: cs" in lines


def _sets(triples):
    return {s.language: s for s in sets_from_captions("tiny", Path("img"), triples)}


def test_chrf_is_sacrebleu_corpus_chrf_against_the_same_images_english():
    en_a, en_a2, en_b = "A brown dog runs.", "A dog is running.", "A small cat sleeps."
    de_a, de_b = "Ein brauner Hund läuft.", "Eine kleine Katze schläft."
    sets = _sets(
        [("a.png", "en", en_a), ("a.png", "en", en_a2), ("b.png", "en", en_b)]
        + [("b.png", "de", de_b), ("a.png", "de", de_a)]  # order of captions is the set's own
        + [("c.png", "th", "แมวตัวเล็กนอนหลับ")]  # an image with no English caption
    )
    overlap = spelling_overlap(list(sets.values()))
    # each caption against all English captions of its image; b has one, so its slot 2 is empty
    expected = sacrebleu.corpus_chrf([de_b, de_a], [[en_b, en_a], [None, en_a2]]).score
    assert overlap["de"].chrf == pytest.approx(expected) and overlap["de"].captions == 2
    assert 0 < expected < 50
    assert overlap["en"].chrf is None and overlap["en"].reason == "the reference"
    assert (
        overlap["th"].chrf is None and "no English caption for its images" in overlap["th"].reason
    )
    same = spelling_overlap(list(_sets([("a.png", "en", en_a), ("a.png", "pt", en_a)]).values()))
    assert same["pt"].chrf == pytest.approx(100.0)  # identical spelling: everything shared
    alone = spelling_overlap(list(_sets([("a.png", "de", de_a)]).values()))
    assert alone["de"].reason == "no English captions in the set"


def test_chrf_on_many_captions_uses_an_evenly_spaced_thousand():
    """Past MAX_CAPTIONS the score is taken on MAX_CAPTIONS captions spread over the whole set
    (not the first ones), and it stays close to the score on all of them."""
    words = ["Hund", "Katze", "Vogel", "Fisch", "Pferd", "Maus"]
    english = ["dog", "cat", "bird", "fish", "horse", "mouse"]
    rows = []
    for i in range(2500):
        rows.append((f"{i}.png", "en", f"a {english[i % 6]} number {i}"))
        # the first half shares the English spelling, the second half does not
        rows.append((f"{i}.png", "de", f"a {english[i % 6]} number {i}" if i < 1250 else
                     f"ein {words[i % 6]} Nummer {i}"))  # fmt: skip
    sets = list(_sets(rows).values())
    overlap = spelling_overlap(sets)
    assert overlap["de"].captions == MAX_CAPTIONS == 1000
    german = next(s for s in sets if s.language == "de")
    full = sacrebleu.corpus_chrf(
        list(german.captions), [[f"a {english[i % 6]} number {i}" for i in range(2500)]]
    ).score
    assert overlap["de"].chrf == pytest.approx(full, abs=2.0)


@pytest.mark.parametrize(
    "language, code",
    [("en", "Latn"), ("ar", "Arab"), ("he", "Hebr"), ("hi", "Deva"), ("th", "Thai"),
     ("ja", "Jpan"), ("zh", "Hani"), ("ko", "Hang"), ("ru", "Cyrl"), ("el", "Grek"),
     ("am", "Ethi"), ("vi", "Latn")],
)  # fmt: skip
def test_script_of_each_languages_captions(language, code):
    assert script_code(CAPTIONS[language]) == code
    # combining marks (decomposed Vietnamese, Devanagari vowel signs) do not change the script
    assert script_code([unicodedata.normalize("NFD", c) for c in CAPTIONS[language]]) == code


def test_script_groups_largest_first_english_first_then_by_score():
    languages = ["ar", "he", "en", "de", "fr", "ja", "ko", "hi", "vi", "fa"]
    scripts = {language: script_code(CAPTIONS.get(language, ["گربه"])) for language in languages}
    key = {"ar": 5.0, "fa": 9.0, "de": 30.0, "fr": 50.0, "vi": None, "en": 1.0, "hi": 3.0}
    groups = script_groups(languages, scripts, key)
    assert groups == [
        ("Latn", ["en", "fr", "de", "vi"]),  # English first; vi has no score: last
        ("Arab", ["fa", "ar"]),
        ("Deva", ["hi"]),
        ("Hang", ["ko"]),
        ("Hebr", ["he"]),
        ("Jpan", ["ja"]),
    ]
    table = language_rows({"m": key}, groups).splitlines()
    assert table[0] == "| language | script | m |"
    assert table[2:5] == ["| en | Latn | 1.0 |", "| fr | Latn | 50.0 |", "| de | Latn | 30.0 |"]


def test_the_106_language_chart_gives_every_language_its_own_row():
    languages = ["en"] + [f"x{i:03d}" for i in range(105)]
    scripts = {language: ("Latn", "Arab", "Hebr", "Deva", "Jpan")[i % 5] for i, language in
               enumerate(languages)}  # fmt: skip
    series = {
        "mling": {language: (7 * i) % 60 + 1.0 for i, language in enumerate(languages)},
        "en": {language: (11 * i) % 40 + 1.0 for i, language in enumerate(languages)},
    }
    groups = script_groups(languages, scripts, series["mling"])
    overlap = spelling_overlap(
        list(_sets([("a.png", "en", "A dog."), ("a.png", "de", "Ein Hund.")]).values())
    )
    figure = language_dots(series, groups, "106 languages", "mR (%)", overlap)
    assert figure.get_figheight() >= ROW_INCHES * 106
    figure.canvas.draw()
    axes = figure.axes[0]
    labels = [label for label in axes.get_yticklabels() if label.get_text()]
    assert [label.get_text() for label in labels] == [lang for _, m in groups for lang in m]
    boxes = sorted((label.get_window_extent() for label in labels), key=lambda box: box.y0)
    assert all(lower.y1 <= upper.y0 for lower, upper in zip(boxes, boxes[1:], strict=False))
    import matplotlib.pyplot as plt

    plt.close(figure)


def _keys(value):
    """The key structure of a JSON value: dicts by their keys, leaves by their type."""
    if isinstance(value, dict):
        return {key: _keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_keys(item) for item in value[:1]]
    return type(value).__name__


def test_the_json_keeps_its_shape(tmp_path):
    sets = list(_sets([("a.png", lang, CAPTIONS[lang][0]) for lang in ("en", "ar", "ja")]).values())
    recall = {"R@1": 50.0, "R@5": 100.0, "R@10": 100.0}
    results = {"mling": {s.language: {"i2t": recall, "t2i": recall, "mR": 83.3} for s in sets}}
    data = {s.language: s.describe() for s in sets}
    write_retrieval_report(tmp_path / "with", "t", results, data, sets=sets)
    write_retrieval_report(tmp_path / "without", "t", results, data)
    shape = _keys(json.loads((tmp_path / "with/report.json").read_text(encoding="utf-8")))
    assert shape == _keys(json.loads((tmp_path / "without/report.json").read_text("utf-8")))
    # as before the per-language layout: the JSON is the results and the data, nothing added
    metrics = {"i2t": dict.fromkeys(recall, "float"), "mR": "float", "t2i": {}}
    metrics["t2i"] = metrics["i2t"]
    counts = {
        "captions": "int",
        "images": "int",
        "queries_i2t": "int",
        "set": "str",
        "source": "str",
    }
    assert shape == {
        "data": {language: counts for language in ("ar", "en", "ja")},
        "languages": ["str"],
        "models": {"mling": {language: metrics for language in ("ar", "en", "ja")}},
        "notes": [],
        "reference": "NoneType",
        "sources": {},
        "title": "str",
    }
