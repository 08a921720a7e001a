"""The zero-shot classification report: top-1/top-5 accuracy, models by languages.

`report.json` ({"models": {NAME: {LANG: {"top1", "top5"}}}} plus `languages`, `data`),
`report.md`, `report.csv` and `report.png`, in the style of the retrieval report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from mling.common.atomic import write_atomic
from mling.common.hub import Source
from mling.common.report import markdown_table, write_report
from mling.evaluation.retrieval_report import STEM, language_bars, language_table, models_section


def write_zero_shot_report(
    out_dir: str | Path,
    title: str,
    results: Mapping[str, Mapping[str, dict[str, float | None]]],
    data: dict,
    sources: Mapping[str, Source] | None = None,
) -> tuple[dict[str, Path], str]:
    """results: {model: {language: {"top1": %, "top5": %}}} -> (paths, the top-1 table);
    `sources` {model: where it was loaded from, with the hub revision}."""
    languages = list(data["templates"])
    top1 = {name: {lang: m["top1"] for lang, m in by.items()} for name, by in results.items()}
    table = language_table(top1, languages)
    detail = markdown_table(
        ["model", "language", "top-1", "top-5"],
        [
            [name, lang, m["top1"], m["top5"]]
            for name, by in results.items()
            for lang, m in by.items()
        ],
    )
    templates = ", ".join(f"{lang} {n}" for lang, n in data["templates"].items())
    markdown = "\n".join(
        [
            f"# {title}",
            "",
            "Cells are top-1 accuracy in percent: each class embedding is the normalized mean of "
            "its prompts (class names × templates) in that language. Ties count against the model.",
            "",
            table,
            "",
            "## Top-1 and top-5",
            "",
            detail,
            "",
            f"{data['images']} images, {data['classes']} classes; templates per language: "
            f"{templates}.",
            "",
            *models_section(sources),
            f"![top-1 by language]({STEM}.png)",
        ]
    )
    report = {"title": title, "languages": languages, "models": results, "data": data}
    report["sources"] = {name: s.to_dict() for name, s in (sources or {}).items()}
    figure = language_bars(top1, languages, title, "top-1 accuracy (%)")
    paths = write_report(out_dir, STEM, report, markdown, figure)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "language", "top1", "top5"])
    for name, by in results.items():
        writer.writerows(
            [name, lang, *(None if v is None else round(v, 4) for v in (m["top1"], m["top5"]))]
            for lang, m in by.items()
        )
    paths["csv"] = write_atomic(Path(out_dir) / f"{STEM}.csv", buffer.getvalue().encode())
    return paths, table
