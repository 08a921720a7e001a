"""The vocabulary report at 100+ languages: the spread first, the languages over the [UNK] target
and the costliest named under it, then every language once, grouped by script; the chart one row
per language, up to its limit. Made-up metrics, no vocabulary built; figures checked by hand."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from mling.vocab.vocab_report import (
    CHART_LANGUAGES,
    ROW_INCHES,
    UNK_TARGET,
    WORST_LISTED,
    build_markdown,
    chart_languages,
    compare_markdown,
    problem_lines,
    report_figure,
    write_build_report,
)

# language codes by the script of their text, as `main_script` names it
# fmt: off
SCRIPTS = {
    "Latin": ["en", "de", "fr", "es", "it", "pt", "nl", "pl", "cs", "sk", "sl", "hr", "bs", "sq",
              "ro", "hu", "fi", "et", "lv", "lt", "da", "sv", "nb", "nn", "is", "ga", "cy", "gd",
              "br", "eu", "ca", "gl", "oc", "co", "vi", "id", "ms", "tl", "jv", "su", "ceb", "sw",
              "yo", "so", "af", "mt", "tr", "az", "uz", "tk", "lb", "fy", "eo", "ast", "la",
              "zu", "xh", "ha", "ig", "mi", "sm", "to", "fj", "haw", "qu", "ay", "gn", "wo", "ln",
              "rw"],
    "Cyrillic": ["ru", "uk", "be", "bg", "mk", "sr", "kk", "ky", "tg", "mn", "tt", "ba", "cv",
                 "ce", "os", "sah", "kv", "udm"],
    "Arabic": ["ar", "fa", "ur", "ps", "ug", "sd", "ckb", "arz", "azb", "pnb"],
    "Devanagari": ["hi", "mr", "ne", "sa", "mai", "new", "bho"],
    "Han": ["zh", "yue", "wuu", "ja", "lzh"],
    "Hebrew": ["he", "yi"],
    "Hangul": ["ko"],
    "Thai": ["th", "sou"],
    "Greek": ["el"],
    "Georgian": ["ka"],
    "Bengali": ["bn", "as"],
    "Ethiopic": ["am", "ti"],
    "Tamil": ["ta"],
}
# fmt: on
LANGUAGES = [lang for members in SCRIPTS.values() for lang in members]
SCRIPT_OF = {lang: script for script, members in SCRIPTS.items() for lang in members}
OVER_TARGET = {"yi": 0.012, "ti": 0.008}  # [UNK] rates at or over UNK_TARGET
FEW_LINES = ("lzh",)  # under min_train_lines: over the target but not judged
MIN_TRAIN_LINES = 200


def _row(i: int, lang: str) -> dict:
    """One language's metrics: tokens per word spread over 1.20-3.18, a distinct value each."""
    unk = OVER_TARGET.get(lang, 0.02 if lang in FEW_LINES else 0.0)
    return {
        "lines": 100 + i,
        "script": SCRIPT_OF[lang],
        "unk_rate": unk,
        "unk_char_rate": unk / 2,
        "fertility": 1.2 + (i * 37 % len(LANGUAGES)) / 60,
        "parity": None if lang == "en" else 1.0 + (i % 7) / 10,
        "train_lines": 50 if lang in FEW_LINES else 1000 + i,
    }


def _report(languages: list[str]) -> dict:
    """A build's report.json as `build_report` makes it, with made-up figures."""
    rows = {lang: _row(i, lang) for i, lang in enumerate(languages)}
    failing = sorted(lang for lang in OVER_TARGET if lang in rows)
    judged = [lang for lang in rows if lang not in FEW_LINES]

    def spread(name: str) -> dict:
        values = {lang: row[name] for lang, row in rows.items() if row[name] is not None}
        ranked = sorted(values, key=lambda lang: (values[lang], lang))
        ordered = sorted(values.values())
        return {
            "languages": len(values),
            "median": ordered[len(ordered) // 2],
            "mean": sum(ordered) / len(ordered),
            "worst": values[ranked[-1]],
            "worst_language": ranked[-1],
            "best": values[ranked[0]],
            "best_language": ranked[0],
        }

    return {
        "output": "vocab",
        "algorithm": "wordpiece",
        "vocab_size": 32000,
        "languages": rows,
        "summary": {
            name: spread(name) for name in ("unk_rate", "unk_char_rate", "fertility", "parity")
        },
        "scripts": {
            "Common": {"tokens": 300, "share": 300 / 32000},
            "Latin": {"tokens": 9000, "share": 9000 / 32000},
            "Han": {"tokens": 5000, "share": 5000 / 32000},
        },
        "unk_target": {
            "threshold": UNK_TARGET,
            "min_train_lines": MIN_TRAIN_LINES,
            "languages": len(judged),
            "failing": failing,
            "met": not failing,
        },
        "corpus": {"lines": 1000, "held_out_lines": 50, "skipped": {}, "label_sources": {}},
        "sample": {
            "lines": 900,
            "bytes": 9000,
            "effective_alpha": 0.3,
            "languages": {
                lang: {"corpus_lines": 10, "sampled_lines": 9, "rate": 0.9} for lang in rows
            },  # fmt: skip
        },
        "config": {"sampling": {"alpha": 0.3, "seed": 0}},
        "alphabet": {
            "chars": 100,
            "continuation": 50,
            "by_rule": {"coverage": 100},
            "dropped": {},
            "uncovered": {},
            "exemplar_sources": {},
        },  # fmt: skip
    }


def _table(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first table under `## heading`, header and rule left out."""
    section = markdown.split(f"## {heading}\n")[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def test_every_language_once_grouped_by_script_costliest_first():
    report = _report(LANGUAGES)
    assert len(LANGUAGES) == len(set(LANGUAGES)) >= 120
    markdown = build_markdown(report)
    table = _table(markdown, "Per language")
    assert sorted(row[0] for row in table) == sorted(LANGUAGES)
    # scripts in contiguous groups, the largest first; in each the most tokens per word first
    scripts = [row[1] for row in table]
    runs = [s for i, s in enumerate(scripts) if i == 0 or s != scripts[i - 1]]
    assert len(runs) == len(set(runs)) == len(SCRIPTS) == 13
    sizes = [scripts.count(s) for s in runs]
    assert sizes == sorted(sizes, reverse=True) and runs[:3] == ["Latin", "Cyrillic", "Arabic"]
    for script in runs:
        fertility = [float(row[6]) for row in table if row[1] == script]
        assert fertility == sorted(fertility, reverse=True)
    line = next(x for x in markdown.splitlines() if x.startswith("Scripts: "))
    assert line.startswith("Scripts: Latin 70, Cyrillic 18, Arabic 10, Devanagari 7, Han 5, ")
    # the summary first, the languages that stand out under it, then the table
    assert markdown.index("## Spread across languages") < markdown.index("## Per language")
    summary = markdown.split("## Spread across languages")[1].split("## Per language")[0]
    assert "- [UNK] target missed" in summary and "2, worst first: yi 1.20%, ti 0.80%" in summary
    assert "not judged): lzh 2.00%" in summary
    assert f"most tokens per word ({WORST_LISTED} of {len(LANGUAGES)}" in summary
    # over the target: marked in the table, judged or not
    marked = {row[0] for row in table if row[4].endswith("▲")}
    assert marked == {"yi", "ti", "lzh"}


def test_problem_lines_by_hand():
    """Three languages: none over the target, costliest first with their script."""
    rows = {
        "de": {"script": "Latin", "unk_rate": 0.0, "fertility": 1.5, "parity": 1.2},
        "th": {"script": "Thai", "unk_rate": 0.001, "fertility": 2.25, "parity": 1.9},
        "en": {"script": "Latin", "unk_rate": 0.0, "fertility": 1.25, "parity": None},
    }
    evaluation = {
        "languages": rows,
        "summary": {"fertility": {"median": 1.5}},
        "unk_target": {"threshold": 0.005, "min_train_lines": 200, "languages": 3, "failing": []},
    }
    assert problem_lines(evaluation) == [
        "- [UNK] target missed (at or over 0.5%, 3 languages judged): none",
        "- most tokens per word (3 of 3, median 1.50): th 2.25 (Thai), de 1.50 (Latin), "
        "en 1.25 (Latin)",
        "- highest parity vs English (2 of 2): th 1.90, de 1.20",
    ]


def test_json_is_the_report_and_markdown_reads_the_same_from_it(tmp_path):
    """report.json keeps the data as given (keys sorted); the Markdown built from the file is
    the Markdown built in memory (scripts ranked by tokens, not by their stored order)."""
    report = _report(LANGUAGES)
    paths = write_build_report(tmp_path, report)
    loaded = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert loaded == json.loads(json.dumps(report))
    assert build_markdown(loaded) == paths["md"].read_text(encoding="utf-8").rstrip("\n")
    assert _table(build_markdown(loaded), "Vocabulary share per script")[0][0] == "Latin"


def test_compare_lists_every_language_once_grouped_by_script():
    small = _report(LANGUAGES[:40] + ["ko", "th"])
    large = _report(LANGUAGES)
    report = {"inputs": ["captions.jsonl"], "tokenizers": {"small": small, "large": large}}
    table = _table(compare_markdown(report), "Per language")
    assert sorted(row[0] for row in table) == sorted(LANGUAGES)
    assert [row[1] for row in table[:40]] == ["Latin"] * 40  # the first vocabulary's languages
    ru = next(row for row in table if row[0] == "ru")  # only the second vocabulary measured it
    fertility = f"{large['languages']['ru']['fertility']:.2f}"
    assert ru[1] == "Cyrillic" and ru[3:6] == ["—", "—", "—"] and ru[6:8] == ["0.00", fertility]


@pytest.mark.parametrize("vocabularies", [1, 2])
def test_figure_has_a_row_per_language_and_grows_with_them(vocabularies):
    def figure(n: int):
        report = _report(LANGUAGES[:n])
        return report_figure({f"v{k}": report for k in range(vocabularies)})

    few, many = figure(12), figure(CHART_LANGUAGES)
    try:
        grown = many.get_size_inches()[1] - few.get_size_inches()[1]
        assert grown == pytest.approx(ROW_INCHES * (CHART_LANGUAGES - 12))
        labels = [t.get_text() for t in many.axes[0].get_yticklabels()]
        assert len(labels) == CHART_LANGUAGES and "en (Latin)" in labels
        drawn = LANGUAGES[:CHART_LANGUAGES]
        costliest = max(drawn, key=lambda lang: _row(LANGUAGES.index(lang), lang)["fertility"])
        assert labels[0] == f"{costliest} ({SCRIPT_OF[costliest]})"
    finally:
        plt.close(few)
        plt.close(many)


def test_figure_past_its_rows_draws_the_languages_over_the_target_then_the_costliest():
    report = _report(LANGUAGES)  # 121 languages, more than the chart's rows
    assert len(LANGUAGES) > CHART_LANGUAGES
    fertility = {lang: row["fertility"] for lang, row in report["languages"].items()}
    drawn = chart_languages(report["languages"], UNK_TARGET)
    over = {"yi", "ti", "lzh"}  # lzh: too few lines to be judged, but its [UNK] is still high
    costliest = sorted(set(LANGUAGES) - over, key=fertility.get, reverse=True)
    assert set(drawn) == over | set(costliest[: CHART_LANGUAGES - len(over)])
    assert drawn == sorted(drawn, key=fertility.get, reverse=True)  # most tokens per word first
    figure = report_figure({"vocabulary": report})
    try:
        labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
        assert labels == [f"{lang} ({SCRIPT_OF[lang]})" for lang in drawn]
        title = figure.axes[0].get_title()
        assert title.startswith(f"Tokens per word, {CHART_LANGUAGES} of {len(LANGUAGES)}")
    finally:
        plt.close(figure)
    # a few languages are all drawn, in the same order as the report's tables
    assert chart_languages(report["languages"], UNK_TARGET, limit=len(LANGUAGES)) == sorted(
        LANGUAGES, key=fertility.get, reverse=True
    )
