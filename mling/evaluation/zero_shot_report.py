"""The zero-shot classification report, readable at 100+ languages, in the retrieval report's
layout (`language_report.py`): languages as rows, models as columns.

`report.json` ({"models": {NAME: {LANG: {"top1", "top5"}}}} plus `languages`, `data`, `title`,
`sources`), `report.md` (a fairness summary of top-1 per model, then one row per language
grouped by script with its class names' chrF against English, top-5 in the same order, the
data), `report.csv` (one row per model and language) and `report.png` (a dot plot of top-1,
one row per language).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from mling.common.atomic import write_atomic
from mling.common.hub import Source
from mling.common.report import write_report
from mling.common.scripts import script_code
from mling.evaluation.fairness import BELOW, ENGLISH
from mling.evaluation.language_report import (
    LOW,
    groups_line,
    language_dots,
    language_rows,
    overlap_note,
    script_groups,
    summary_section,
)
from mling.evaluation.retrieval_report import PRINTED_LANGUAGES, STEM, models_section
from mling.evaluation.spelling import name_overlap
from mling.evaluation.zero_shot_data import ClassPrompts

Results = Mapping[str, Mapping[str, dict[str, float | None]]]  # {model: {language: {"top1"...}}}


def prompt_scripts(prompts: ClassPrompts) -> dict[str, str]:
    """{language: ISO 15924 code} from its templates and class names together: Japanese names
    may be all Han, its templates carry the kana that make it `Jpan`."""
    return {
        language: script_code(
            [*prompts.templates[language], *(n for names in classes for n in names)]
        )
        for language, classes in prompts.names.items()
    }


def no_overlap_reason(prompts: ClassPrompts | None, english: str = ENGLISH) -> str | None:
    """Why the report has no chrF column, or None when the class names give one."""
    if prompts is None:
        return "the report was given no class names"
    if english not in prompts.names:
        return (
            f"{english} is not among the languages evaluated, so no class name has an "
            f"{english} counterpart (add {english} to --languages)"
        )
    if len(prompts.names) == 1:
        return f"{english} is the only language evaluated"
    return None


def templates_line(templates: Mapping[str, int]) -> str:
    """'templates: 2 (en), 1 (ru, ja, ar)': one entry per count, not per language, so the line
    stays short at 100+ languages."""
    by_count: dict[int, list[str]] = {}
    for language, count in templates.items():
        by_count.setdefault(count, []).append(language)
    if len(by_count) == 1:
        count = next(iter(by_count))
        return f"{count} template{'' if count == 1 else 's'} in every language"
    ranked = sorted(by_count.items(), key=lambda item: -item[0])
    return "templates per language: " + ", ".join(
        f"{count} ({', '.join(languages)})" for count, languages in ranked
    )


def zero_shot_csv(results: Results) -> str:
    """One row per model and language: top-1 and top-5 in percent (empty where not defined)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "language", "top1", "top5"])
    for name, by_language in results.items():
        writer.writerows(
            [name, lang, *(None if v is None else round(v, 4) for v in (m["top1"], m["top5"]))]
            for lang, m in by_language.items()
        )
    return buffer.getvalue()


def write_zero_shot_report(
    out_dir: str | Path,
    title: str,
    results: Results,
    data: dict,
    sources: Mapping[str, Source] | None = None,
    prompts: ClassPrompts | None = None,
) -> tuple[dict[str, Path], str]:
    """Write report.{json,md,csv,png}; returns (paths, the summary and table for stdout).

    `results` is {model: {language: {"top1": %, "top5": %}}}, `data` {"images", "classes",
    "templates": {language: count}}, `sources` {model: where it was loaded from, with the hub
    revision}, `prompts` the class names and templates evaluated: they give each language's
    script and its names' chrF against English (the JSON carries neither, so its shape stays
    that of `results`).
    """
    languages = list(data["templates"])
    top1 = {name: {lang: m["top1"] for lang, m in by.items()} for name, by in results.items()}
    top5 = {name: {lang: m["top5"] for lang, m in by.items()} for name, by in results.items()}
    scripts = prompt_scripts(prompts) if prompts is not None else {}
    why_not = no_overlap_reason(prompts)
    overlap = name_overlap(prompts.names) if prompts is not None and why_not is None else None
    first = next(iter(top1), "the first model")
    groups = script_groups(languages, scripts, top1.get(first, {}))
    summary = summary_section(top1)
    table = language_rows(top1, groups, overlap)

    lines = [
        f"# {title}",
        "",
        "Cells are top-1 accuracy in percent: each class embedding is the normalized mean of "
        "its prompts (class names × templates) in that language. Ties count against the model.",
        "",
        "## Fairness across languages",
        "",
        f"Per model: its {ENGLISH} top-1, the mean and median over its languages, the worst "
        f"language, worst/{ENGLISH}, and how many languages score under {BELOW:g}x its "
        f"{ENGLISH} top-1.",
        "",
        *summary,
        "## Per language",
        "",
        f"Languages grouped by the script of their class names and templates (ISO 15924), the "
        f"largest group first; in each group {ENGLISH} first, then by {first}'s top-1, highest "
        f"first. {LOW}: under {BELOW:g}x that model's {ENGLISH} top-1.",
        "",
        table,
        "",
        groups_line(groups) + ".",
        "",
    ]
    if overlap is not None:
        lines += [overlap_note(overlap, texts="class names", counterpart="of the same classes")]
    else:
        lines += [f"No chrF vs {ENGLISH} column: {why_not}."]
    lines += ["", "## Top-5", ""]
    if any(v is not None for values in top5.values() for v in values.values()):
        lines += [
            f"Top-5 accuracy in percent, languages in the order above. {LOW}: under {BELOW:g}x "
            f"that model's {ENGLISH} top-5.",
            "",
            language_rows(top5, groups),
        ]
    else:
        lines += [f"Left out: with {data['classes']} classes, top-5 would always be 100."]
    lines += [
        "",
        "## Data",
        "",
        f"{data['images']} images, {data['classes']} classes; {templates_line(data['templates'])}.",
        "",
        *models_section(sources),
        f"![top-1 by language]({STEM}.png)",
    ]

    figure = language_dots(top1, groups, title, "top-1 accuracy (%)", overlap)
    report = {"title": title, "languages": languages, "models": results, "data": data}
    report["sources"] = {name: s.to_dict() for name, s in (sources or {}).items()}
    paths = write_report(out_dir, STEM, report, "\n".join(lines), figure)
    paths["csv"] = write_atomic(Path(out_dir) / f"{STEM}.csv", zero_shot_csv(results).encode())
    shown = (
        table
        if len(languages) <= PRINTED_LANGUAGES
        else f"({len(languages)} languages: the per-language table is in {STEM}.md)"
    )
    return paths, "\n".join([*summary, shown])
