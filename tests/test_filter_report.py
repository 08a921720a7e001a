"""The filter report at 100+ languages: the retention summary first, then every language once per
table, grouped by script; the chart one row per language. Figures checked by hand."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from mling.common.scripts import group_by_script, language_script
from mling.filtering.filter_report import MIN_LANGUAGE_ROWS, ROW_INCHES, build, retention_spread

SETTINGS = {"engine": "duckdb", "language_id": True, "language_sample": 10, "language_seed": 0}

# lid.176 codes (as the filter reports them: zh-Hans and zh-Hant folded into zh), by script
# fmt: off
LATIN = ["en", "de", "fr", "es", "it", "pt", "nl", "pl", "cs", "sk", "sl", "hr", "bs", "sq", "ro",
         "hu", "fi", "et", "lv", "lt", "da", "sv", "no", "nn", "is", "ga", "cy", "gd", "br", "eu",
         "ca", "gl", "oc", "co", "vi", "id", "ms", "tl", "jv", "su", "ceb", "war", "ilo", "sw",
         "yo", "so", "af", "mt", "tr", "az", "uz", "tk", "lb", "fy", "eo", "ast", "an", "wa",
         "la", "sh"]
CYRILLIC = ["ru", "uk", "be", "bg", "mk", "sr", "kk", "ky", "tg", "mn", "tt", "ba", "cv", "ce",
            "kv", "os", "sah", "tyv"]
ARABIC = ["ar", "fa", "ur", "ps", "ug", "sd", "ckb", "arz", "azb", "mzn", "pnb", "lrc"]
DEVANAGARI = ["hi", "mr", "ne", "sa", "mai", "new", "bh", "gom", "dty", "hif"]
OTHERS = ["he", "yi", "zh", "wuu", "yue", "ja", "ko", "th", "lo", "km", "my", "el", "am", "ka",
          "xmf", "hy", "bn", "as", "ta", "te", "kn", "ml", "si"]
# fmt: on
NO_SPACES = {"zh": 0.2, "wuu": 0.22, "yue": 0.25, "ja": 0.3, "th": 0.15, "lo": 0.35, "km": 0.1}
FEW_ROWS = ("la", "sh", "yi")  # under MIN_LANGUAGE_ROWS: in the tables, not in the spread


def _groups(languages: list[str]) -> tuple[dict, dict]:
    """(totals, groups) for `build`, every row labelled: language i has 30 + 3i rows (FEW_ROWS
    10), kept at 70% but for the scripts without spaces (NO_SPACES) and `und` (none kept)."""
    groups, totals = {}, {"kept": 0, "too_few_words": 0}
    for i, language in enumerate([*languages, "und"]):
        rows = 10 if language in FEW_ROWS else 30 + 3 * i
        kept = 0 if language == "und" else round(rows * NO_SPACES.get(language, 0.7))
        groups[("kept", language)] = {"rows": kept}
        groups[("too_few_words", language)] = {"rows": rows - kept, "too_few_words": rows - kept}
        totals["kept"] += kept
        totals["too_few_words"] += rows - kept
    return totals, groups


def _build(languages: list[str]):
    totals, groups = _groups(languages)
    rows = sum(totals.values())
    aggregates = {"by_reason": totals, "vocabulary": {}}
    return build(aggregates, groups, rows, totals["kept"], [("pre-pass", 1.0)], SETTINGS)


def _table(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first table under `## heading`, header and rule left out."""
    section = markdown.split(f"## {heading}")[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


@pytest.mark.parametrize(
    ("code", "script"),
    [("en", "Latn"), ("sr", "Cyrl"), ("sr-Latn", "Latn"), ("ar", "Arab"), ("ckb", "Arab"),
     ("he", "Hebr"), ("yi", "Hebr"), ("hi", "Deva"), ("zh", "Hans"), ("yue", "Hant"),
     ("ja", "Jpan"), ("ko", "Kore"), ("th", "Thai"), ("am", "Ethi"), ("sh", "Latn"),
     ("und", "Zzzz"), ("qqq", "Zzzz")],
)  # fmt: skip
def test_script_of_a_language_code(code, script):
    assert language_script(code) == script


def test_group_by_script_keeps_the_order_within_a_group():
    scripts = {"ru": "Cyrl", "en": "Latn", "uk": "Cyrl", "th": "Thai", "de": "Latn"}
    assert group_by_script(["ru", "en", "th", "uk", "de", "und"], scripts) == [
        ("Cyrl", ["ru", "uk"]),  # two each: by code
        ("Latn", ["en", "de"]),
        ("Thai", ["th"]),
        ("Zzzz", ["und"]),
    ]


def test_retention_spread_by_hand():
    # overall 50%: 0.85x overall is 42.5%; ko (19 rows) is too small to count
    languages = [
        {"language": "en", "rows": 40, "retention": 0.6},
        {"language": "ja", "rows": 20, "retention": 0.2},
        {"language": "ar", "rows": 30, "retention": 0.5},
        {"language": "ru", "rows": 25, "retention": 0.9},
        {"language": "th", "rows": 20, "retention": 0.4},
        {"language": "ko", "rows": 19, "retention": 0.0},
    ]
    spread = retention_spread(languages, 0.5)
    assert spread["languages_counted"] == 5 and spread["min_rows"] == MIN_LANGUAGE_ROWS
    assert spread["lowest"] == {"language": "ja", "retention": 0.2}
    assert spread["lowest_vs_overall"] == pytest.approx(0.4)
    assert spread["highest"] == {"language": "ru", "retention": 0.9}
    assert spread["median"] == 0.5 and spread["median_vs_overall"] == 1.0
    assert spread["below"] == [
        {"language": "ja", "retention": 0.2},
        {"language": "th", "retention": 0.4},
    ]


def test_report_at_120_languages_lists_each_once_by_script_with_the_summary_first():
    languages = LATIN + CYRILLIC + ARABIC + DEVANAGARI + OTHERS
    assert len(languages) == 123
    data, markdown, figure = _build(languages)
    plt.close(figure)
    everyone = sorted([*languages, "und"])

    # the summary comes first, over the languages with enough rows, and names the low ones
    assert markdown.index("## Retention across languages") < markdown.index("## Per language")
    spread = data["retention_spread"]
    assert spread["languages_counted"] == len(languages) - len(FEW_ROWS) + 1  # und counts
    low = ["und", "km", "th", "zh", "wuu", "yue", "ja", "lo"]  # worst first
    assert [e["language"] for e in spread["below"]] == low
    summary = markdown.split("## Retention across languages")[1].split("\n## ")[0]
    assert f"Over the {spread['languages_counted']} languages with at least 20 input" in summary
    assert "below 0.85x overall" in summary and "8 languages, worst first: und 0.0%, km 10.1%" in (
        summary
    )

    for heading in ("Per language", "Each filter alone"):
        table = _table(markdown, heading)
        codes = [row[0] for row in table]
        assert sorted(codes) == everyone, heading  # every language, exactly once
        scripts = [row[1] for row in table]
        assert scripts == [language_script(code) for code in codes]
        runs = [s for i, s in enumerate(scripts) if i == 0 or s != scripts[i - 1]]
        assert len(runs) == len(set(runs)), heading  # each script one block
        sizes = [scripts.count(s) for s in runs]
        assert sizes == sorted(sizes, reverse=True) and runs[:4] == ["Latn", "Cyrl", "Arab", "Deva"]
    # in each group, the most rows first
    table = _table(markdown, "Per language")
    by_script: dict[str, list[int]] = {}
    for row in table:
        by_script.setdefault(row[1], []).append(int(row[2]))
    assert all(rows == sorted(rows, reverse=True) for rows in by_script.values())
    # the low languages are marked in the table, the others not
    marked = sorted(row[0] for row in table if row[4].endswith("▼"))
    assert marked == sorted(low)
    assert "Scripts: Latin (Latn) 60, Cyrillic (Cyrl) 18, Arabic (Arab) 12" in markdown
    assert "more languages in report.json" not in markdown


def test_the_chart_grows_with_the_languages():
    heights, rows = [], []
    for languages in (LATIN[:10], LATIN + CYRILLIC + ARABIC + DEVANAGARI + OTHERS):
        data, _, figure = _build(languages)
        heights.append(figure.get_size_inches()[1])
        per_language = figure.axes[1]
        rows.append([label.get_text() for label in per_language.get_yticklabels()])
        plt.close(figure)
    assert heights[1] - heights[0] == pytest.approx(ROW_INCHES * (len(rows[1]) - len(rows[0])))
    # one row per language with enough rows, lowest retention at the top
    assert len(rows[1]) == data["retention_spread"]["languages_counted"]
    assert rows[1][:2] == ["und (Zzzz)", "km (Khmr)"] and "la (Latn)" not in rows[1]


def test_a_report_with_no_language_big_enough_says_so():
    # 8 Thai rows, 5 kept: listed in the tables, too few for the spread
    totals = {"kept": 5, "too_few_words": 3}
    groups = {("kept", "th"): {"rows": 5}, ("too_few_words", "th"): {"rows": 3, "too_few_words": 3}}
    data, markdown, figure = build(
        {"by_reason": totals, "vocabulary": {}}, groups, 8, 5, [("pre-pass", 1.0)], SETTINGS
    )
    plt.close(figure)
    assert data["retention_spread"] == {"languages_counted": 0, "min_rows": MIN_LANGUAGE_ROWS}
    assert "No language has 20 input rows or more" in markdown
    assert "| th | Thai | 8 | 5 | 62.5% | 3 |" in markdown
