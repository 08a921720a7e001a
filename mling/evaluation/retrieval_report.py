"""The per-language retrieval report, readable at 100+ languages (ALIGN's Table 11 turned on
its side: languages as rows, models as columns).

`report.json` ({"models": {NAME: {LANG: {"i2t": {"R@1", "R@5", "R@10"}, "t2i": {...}, "mR"}}}}
plus `languages`, `data`, `reference`, `notes`, `sources`, and `shared_pool` when one was
asked for), `report.md` (a fairness summary per model, on the shared pool where there is one,
then one row per language grouped by script with its chrF against English, the images it
names, the paper's columns where they apply, a detail table with R@1/5/10 per direction, the
data), `report.csv` (one row per model and language, each on its own images) and `report.png`
(a dot plot, one row per language, on the shared pool where there is one).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from mling.common.atomic import write_atomic
from mling.common.hub import Source
from mling.common.report import markdown_table, write_report
from mling.common.scripts import script_code
from mling.evaluation.caption_sets import CaptionSet
from mling.evaluation.fairness import BELOW, ENGLISH, fairness_summary
from mling.evaluation.language_report import (
    LOW,
    MAX_LISTED,
    groups_line,
    language_dots,
    language_rows,
    overlap_note,
    script_groups,
    summary_section,
)
from mling.evaluation.recall import chance_mr
from mling.evaluation.shared_pool import SharedPool, images_named
from mling.evaluation.spelling import spelling_overlap

STEM = "report"
DIRECTIONS = ("i2t", "t2i")
ARROWS = {"i2t": "image→text", "t2i": "text→image"}
KS = ("R@1", "R@5", "R@10")
PRINTED_LANGUAGES = 20  # up to this many languages, stdout gets the per-language table too

# Jia et al. 2021 (ALIGN), Table 11: Multi30k test_2016 image-text retrieval, mR.
# ALIGN and M3P are zero-shot; UC2 is fine-tuned on Multi30k.
MULTI30K_REFERENCE = {
    "source": "Jia et al. 2021, ALIGN, Table 11 (Multi30k test_2016, mR)",
    "models": {
        "ALIGN-EN (paper)": {"en": 92.2},
        "ALIGN-mling (paper)": {"en": 90.2, "de": 84.1, "fr": 84.9, "cs": 63.2},
        "M3P zero-shot (paper)": {"en": 57.9, "de": 36.8, "fr": 27.1, "cs": 20.4},
        "UC2 fine-tuned (paper)": {"en": 88.2, "de": 84.5, "fr": 83.9, "cs": 81.2},
    },
}


def retrieval_csv(results: Mapping[str, Mapping[str, dict]]) -> str:
    """One row per model and language: the six recalls and mR, in percent."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "language", *[f"{d} {k}" for d in DIRECTIONS for k in KS], "mR"])
    for name, by_language in results.items():
        for language, m in by_language.items():
            recalls = [round(m[d][k], 4) for d in DIRECTIONS for k in KS]
            writer.writerow([name, language, *recalls, round(m["mR"], 4)])
    return buffer.getvalue()


def models_section(sources: Mapping[str, Source] | None) -> list[str]:
    """Markdown lines naming where each model came from: a folder, or a hub id at a revision."""
    if not sources:
        return []
    rows = [[name, s.hub_id or str(s.path), s.revision or "—"] for name, s in sources.items()]
    return ["## Models", "", markdown_table(["model", "from", "revision"], rows), ""]


def shared_pool_json(pool: SharedPool) -> dict:
    """report.json's `shared_pool`: the pool, its chance mR and every model's metrics on it."""
    return {
        "min_images": pool.min_images,
        "images": len(pool.images),
        "chance_mR": chance_mr(len(pool.images)),
        "languages": list(pool.languages),
        "apart": dict(pool.apart),
        "moved": list(pool.moved),
        "refused": pool.refused,
        "models": {name: dict(by_lang) for name, by_lang in pool.models.items()},
    }


def _moved(languages: Sequence[str]) -> str:
    shown = ", ".join(languages[:MAX_LISTED])
    more = f" and {len(languages) - MAX_LISTED} more" if len(languages) > MAX_LISTED else ""
    return f"{shown}{more}"


def pool_lines(pool: SharedPool | None, english: str = ENGLISH) -> list[str]:
    """Markdown lines opening the fairness summary: the pool the languages are compared on,
    its chance level and the languages apart, or why there is no pool (nothing without one)."""
    if pool is None:
        return []
    if pool.refused is not None:
        return [
            f"No shared pool: {pool.refused}. Below, each language is scored with its own "
            "captions and candidates.",
            "",
        ]
    size = len(pool.images)
    line = (
        f"On a shared pool: the {size:,} images named in every one of the {len(pool.languages)} "
        f"languages that name at least {pool.min_images:,} images; chance mR there is "
        f"{chance_mr(size):.2f}."
    )
    if pool.moved:
        line += (
            f" {_moved(pool.moved)} named at least {pool.min_images:,} too, but shared too few "
            f"with the others: moved apart, fewest first, until the rest shared "
            f"{pool.min_images:,}."
        )
    if pool.apart:
        # fewest first: their own figures are the least comparable with the pool's
        apart = sorted(pool.apart.items(), key=lambda item: (item[1], item[0]))
        listed = ", ".join(f"{language} {count:,}" for language, count in apart[:MAX_LISTED])
        more = f" and {len(apart) - MAX_LISTED} more" if len(apart) > MAX_LISTED else ""
        line += (
            f" Apart, with the images each names: {listed}{more}; "
            "they are in neither this summary nor the chart, and the per-language table has "
            "their mR on their own images."
        )
    if english in pool.apart:
        line += f" {english} is apart, so the pool has no {english} score and no ratios."
    return [line, ""]


def write_retrieval_report(
    out_dir: str | Path,
    title: str,
    results: Mapping[str, Mapping[str, dict]],
    data: Mapping[str, dict],
    reference: Mapping | None = None,
    notes: Sequence[str] = (),
    sources: Mapping[str, Source] | None = None,
    sets: Sequence[CaptionSet] = (),
    pool: SharedPool | None = None,
) -> tuple[dict[str, Path], str]:
    """Write report.{json,md,csv,png}; returns (paths, the summary and table for stdout).

    `results` is {model: {language: retrieval_metrics(...)}}, `data` {language: counts},
    `sources` {model: where it was loaded from, with the hub revision}, `sets` the caption sets
    evaluated: their captions give each language's script, its chrF against English and how
    many images it names (the JSON does not carry these, so its shape stays that of
    `results`). `pool` (evaluate_retrieval's, metrics filled in) moves the fairness summary and
    the chart onto the shared pool and adds `shared_pool` to the JSON; without one, both
    compare each language on its own images, as before pools.
    """
    languages = list(data)
    ref_models = dict(reference["models"]) if reference else {}
    mr = {name: {lang: m["mR"] for lang, m in by_lang.items()} for name, by_lang in results.items()}
    series = {**mr, **ref_models}
    compared = _compared(pool, series)
    scripts = {s.language: script_code(s.captions) for s in sets}
    overlap = spelling_overlap(sets) if sets else None
    counts = {s.language: images_named(s) for s in sets}
    first = next(iter(mr.values()), {})
    groups = script_groups(languages, scripts, first)
    lead = pool_lines(pool)
    summary = summary_section(compared, italic=list(ref_models))
    table = language_rows(
        series,
        groups,
        overlap,
        italic=list(ref_models),
        # only where they differ do the counts explain a difference
        counts=counts if len(set(counts.values())) > 1 else None,
        low={name: fairness_summary(compared[name])["below"] for name in mr}
        if _usable(pool)
        else None,
    )

    detail_rows = [
        [name, lang, *[m[d][k] for d in DIRECTIONS for k in KS], m["mR"]]
        for name, by_lang in results.items()
        for lang, m in by_lang.items()
    ]
    detail = markdown_table(
        ["model", "language", *[f"{ARROWS[d]} {k}" for d in DIRECTIONS for k in KS], "mR"],
        detail_rows,
    )
    data_table = markdown_table(
        ["language", "images", "captions", "set", "captions from"],
        [[lang, d["images"], d["captions"], d["set"], d["source"]] for lang, d in data.items()],
    )
    lines = [
        f"# {title}",
        "",
        "Cells are mR: the mean of R@1, R@5 and R@10 for image→text and text→image, in percent. "
        "Image→text counts a hit when any of the image's captions is in the top K. Ties count "
        "against the model.",
        "",
        "## Fairness across languages",
        "",
        *lead,
        f"Per model: its {ENGLISH} mR, the mean and median over its languages, the worst language, "
        f"worst/{ENGLISH}, and how many languages score under {BELOW:g}x its {ENGLISH} mR.",
        "",
        *summary,
        "## Per language",
        "",
        f"Languages grouped by the script of their captions (ISO 15924), the largest group "
        f"first; in each group {ENGLISH} first, then by {next(iter(mr), 'the first model')}'s "
        f"mR, highest first. Each cell is the language's mR with its own captions"
        + (
            " (images named: image→text ranks only their captions, so fewer is an easier ranking)"
            if len(set(counts.values())) > 1
            else ""
        )
        + f". {LOW}: under {BELOW:g}x that model's {ENGLISH} mR"
        + (" on the shared pool, as in the summary." if _usable(pool) else "."),
        "",
        table,
        "",
        groups_line(groups) + ".",
        "",
    ]
    if overlap is not None:
        lines += [overlap_note(overlap), ""]
    if reference:
        lines += [f"Columns in italics: {reference['source']}.", ""]
    lines += ["## Recall by direction", "", detail, "", "## Data", "", data_table, ""]
    lines += models_section(sources)
    lines += [f"Note: {note}" for note in notes]
    lines += ["", f"![mR by language]({STEM}.png)"]

    figure = _figure(compared, groups, title, overlap, list(ref_models), pool)
    report = {
        "title": title,
        "languages": languages,
        "models": {name: dict(by_lang) for name, by_lang in results.items()},
        "data": dict(data),
        "reference": dict(reference) if reference else None,
        "notes": list(notes),
        "sources": {name: s.to_dict() for name, s in (sources or {}).items()},
    }
    if pool is not None:
        report["shared_pool"] = shared_pool_json(pool)
    paths = write_report(out_dir, STEM, report, "\n".join(lines), figure)
    paths["csv"] = write_atomic(Path(out_dir) / f"{STEM}.csv", retrieval_csv(results).encode())
    shown = (
        table
        if len(languages) <= PRINTED_LANGUAGES
        else (f"({len(languages)} languages: the per-language table is in {STEM}.md)")
    )
    return paths, "\n".join([*lead, *summary, shown])


def _usable(pool: SharedPool | None) -> bool:
    return pool is not None and pool.refused is None


def _compared(pool: SharedPool | None, series: Mapping[str, Mapping[str, float | None]]) -> dict:
    """The scores the languages are compared on: each model's mR on the shared pool where it
    is usable, else `series` itself (each language with its own captions). Reference models
    keep their published scores, for the pool's languages."""
    if not _usable(pool):
        return dict(series)
    pooled = {
        name: {lang: m["mR"] for lang, m in by_lang.items()}
        for name, by_lang in pool.models.items()
    }
    return {
        name: pooled.get(name, {lang: v for lang, v in values.items() if lang in pool.languages})
        for name, values in series.items()
    }


def _figure(
    compared: Mapping[str, Mapping[str, float | None]],
    groups: Sequence[tuple[str, Sequence[str]]],
    title: str,
    overlap: Mapping | None,
    reference: Sequence[str],
    pool: SharedPool | None,
):
    """The dot plot of the compared scores: on a usable pool, its languages only, with the
    pool's chance level."""
    if not _usable(pool):
        return language_dots(compared, groups, title, "mR (%)", overlap, reference)
    kept = [
        (code, [lang for lang in members if lang in pool.languages]) for code, members in groups
    ]
    size = len(pool.images)
    return language_dots(
        compared,
        [(code, members) for code, members in kept if members],
        f"{title}, on the {size:,} images all {len(pool.languages)} languages name"
        + (f" ({len(pool.apart)} more apart, not shown)" if pool.apart else ""),
        "mR (%)",
        overlap,
        reference,
        chance=chance_mr(size),
    )
