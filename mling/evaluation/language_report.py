"""Per-language results laid out to read at 100+ languages: a fairness summary first (one row
per model), then one row per language and one column per model, languages grouped by script and
sorted, beside each its spelling overlap with English; and a chart with one row per language.
Scores are any per-language percentage (mR, top-1 accuracy)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from mling.common.report import markdown_table, new_figure
from mling.common.scripts import script_name
from mling.evaluation.fairness import BELOW, ENGLISH, fairness_summary
from mling.evaluation.spelling import MAX_CAPTIONS, Overlap

LOW = "▼"  # marks a score under BELOW x the model's English score
ROW_INCHES = 0.2  # chart height per language: 8-point labels one row apart never touch
MAX_LISTED = 30  # languages listed by name per model under the summary, worst first

Series = Mapping[str, Mapping[str, float | None]]  # {model: {language: score}}


def script_groups(
    languages: Sequence[str],
    scripts: Mapping[str, str],
    key: Mapping[str, float | None],
    english: str = ENGLISH,
) -> list[tuple[str, list[str]]]:
    """[(ISO 15924 code, languages)]: the largest group first (ties by code), and in each group
    English first, then by `key` descending (missing last), then by language code."""
    groups: dict[str, list[str]] = {}
    for language in languages:
        groups.setdefault(scripts.get(language, "Zzzz"), []).append(language)

    def order(language: str) -> tuple:
        score = key.get(language)
        return (language != english, score is None, -(score or 0.0), language)

    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(code, sorted(members, key=order)) for code, members in ranked]


def _score(
    value: float | None, english: float | None, below: float, low: bool | None = None
) -> str | None:
    """The cell; `low` (None: value under `below` x English) says whether it gets LOW."""
    if value is None:
        return None
    if low is None:
        low = english is not None and english > 0 and value < below * english
    return f"{value:.1f} {LOW}" if low else f"{value:.1f}"


def _ratio(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}x"


def _name(name: str, italic: Sequence[str]) -> str:
    return f"*{name}*" if name in italic else name


def summary_section(
    series: Series, italic: Sequence[str] = (), english: str = ENGLISH, below: float = BELOW
) -> list[str]:
    """Markdown lines: one row per model (English, mean, median, worst, worst/English, how many
    languages fall under `below` x English), then each model's languages under it, worst first."""
    summaries = {name: fairness_summary(values, english, below) for name, values in series.items()}
    rows = []
    for name, s in summaries.items():
        worst = None if s["worst"] is None else f"{s['worst']:.1f} ({s['worst_language']})"
        rows.append(
            [_name(name, italic), s["languages"], s["english"], s["mean"], s["median"], worst,
             _ratio(s["worst_ratio"]), len(s["below"]) if s["english"] else None]
        )  # fmt: skip
    headers = ["model", "languages", english, "mean", "median", "worst", f"worst/{english}",
               f"below {below:g}x {english}"]  # fmt: skip
    lines = [markdown_table(headers, rows), ""]
    for name, s in summaries.items():
        if s["below"]:
            listed = ", ".join(s["below"][:MAX_LISTED])
            more = (
                f" and {len(s['below']) - MAX_LISTED} more" if len(s["below"]) > MAX_LISTED else ""
            )
            lines.append(f"- {_name(name, italic)}, below {below:g}x {english}: {listed}{more}")
        elif s["english"] is None:
            lines.append(f"- {_name(name, italic)}: no {english} score, so no ratios")
    return lines + [""] if lines[-1] else lines


def language_rows(
    series: Series,
    groups: Sequence[tuple[str, Sequence[str]]],
    overlap: Mapping[str, Overlap] | None = None,
    italic: Sequence[str] = (),
    english: str = ENGLISH,
    below: float = BELOW,
    counts: Mapping[str, int] | None = None,
    low: Mapping[str, Collection[str]] | None = None,
) -> str:
    """The full table: one row per language in `groups` order, its script, its chrF against
    English (when `overlap` is given), its `counts` (when given: the images it names), then one
    column per model. `low` ({model: languages}) says which cells get LOW where the comparison
    is made on other scores than the cells' (a shared pool); other models' cells get it under
    `below` x their English."""
    low = low or {}
    headers = ["language", "script"] + ([f"chrF vs {english}"] if overlap is not None else [])
    headers += ["images named"] if counts is not None else []
    headers += [_name(name, italic) for name in series]
    rows = []
    for code, members in groups:
        for language in members:
            row = [language, code]
            if overlap is not None:
                row.append(overlap[language].chrf if language in overlap else None)
            if counts is not None:
                row.append(f"{counts[language]:,}" if language in counts else None)
            row += [
                _score(
                    values.get(language),
                    values.get(english),
                    below,
                    (language in low[name]) if name in low else None,
                )
                for name, values in series.items()
            ]
            rows.append(row)
    return markdown_table(headers, rows)


def overlap_note(
    overlap: Mapping[str, Overlap],
    english: str = ENGLISH,
    texts: str = "captions",
    counterpart: str = "of the same images",
) -> str:
    """One line saying what chrF is and why a cell has none; `texts` are what was compared
    ("class names"), `counterpart` what pairs them with English ("of the same classes")."""
    reasons: dict[str, list[str]] = {}
    for language, o in overlap.items():
        if o.chrf is None:
            reasons.setdefault(o.reason, []).append(language)
    why = "; ".join(f"{', '.join(langs)} ({reason})" for reason, langs in reasons.items())
    return (
        f"chrF vs {english}: sacrebleu's corpus chrF (0-100) of the language's {texts} against "
        f"the {english} {texts} {counterpart}; it is high where the two share spelling "
        f"(names, loanwords, cognates), so a high score there may come from spelling rather "
        f"than meaning"
        + (
            f"; on {most:,} {texts} evenly spaced through the set where there are more."
            if (most := max((o.captions for o in overlap.values()), default=0)) >= MAX_CAPTIONS
            else "."
        )
        + (f" No chrF for {why}." if why else "")
    )


def groups_line(groups: Sequence[tuple[str, Sequence[str]]]) -> str:
    """'Scripts: Latin (Latn) 75, Cyrillic (Cyrl) 12, ...'."""
    return "Scripts: " + ", ".join(
        f"{script_name(code)} ({code}) {len(members)}" for code, members in groups
    )


def language_dots(
    series: Series,
    groups: Sequence[tuple[str, Sequence[str]]],
    title: str,
    xlabel: str,
    overlap: Mapping[str, Overlap] | None = None,
    reference: Sequence[str] = (),
    english: str = ENGLISH,
    chance: float | None = None,
):
    """A dot plot with one row per language (top to bottom in `groups` order) and one marker per
    model, script groups shaded and named, each model's English score a dashed line and
    `chance` (the score of a random ranking, when given) a dotted one; beside it, chrF against
    English as bars. Reference models are hollow markers."""
    order = [language for _, members in groups for language in members]
    height = max(3.0, ROW_INCHES * len(order) + 1.6)
    figure, axes = new_figure(9.0 if overlap is not None else 7.0, height)
    if overlap is not None:
        figure.clf()
        axes, bars = figure.subplots(
            1, 2, sharey=True, gridspec_kw={"width_ratios": [4, 1], "wspace": 0.12}
        )
    rows = {language: i for i, language in enumerate(order)}
    start = 0
    for index, (code, members) in enumerate(groups):
        if index % 2:
            axes.axhspan(start - 0.5, start + len(members) - 0.5, color="0.93", zorder=0)
        # outside the plot, right of its first row: never on top of a marker
        axes.text(1.01, start, code, transform=axes.get_yaxis_transform(), ha="left",
                  va="center", fontsize=7, color="0.35")  # fmt: skip
        start += len(members)
    markers = "osD^vP*X"
    top = 1.0
    for k, (name, values) in enumerate(series.items()):
        shown = [(v, rows[lang]) for lang, v in values.items() if v is not None and lang in rows]
        if not shown:
            continue
        xs, ys = zip(*shown, strict=True)
        top = max(top, *xs)
        hollow = name in reference
        axes.scatter(xs, ys, s=18, marker=markers[k % len(markers)], label=name, zorder=3,
                     facecolors="none" if hollow else f"C{k}", edgecolors=f"C{k}")  # fmt: skip
        if values.get(english) is not None:
            axes.axvline(values[english], color=f"C{k}", linestyle="--", linewidth=0.8, zorder=2)
    if chance is not None:
        axes.axvline(chance, color="0.4", linestyle=":", linewidth=0.8, zorder=2)
        top = max(top, chance)
    axes.set_yticks(range(len(order)), order, fontsize=8)
    axes.set_ylim(len(order) - 0.5, -0.5)
    axes.set_xlim(0, min(100.0, top * 1.08))
    axes.set_xlabel(xlabel)
    axes.grid(axis="x", color="0.85", linewidth=0.5)
    dotted = "; dotted: chance" if chance is not None else ""
    axes.set_title(f"{title}\n(dashed: each model's {english}{dotted}; shaded bands: script "
                   "groups)", fontsize=9, pad=24)  # fmt: skip
    # the legend between the title and the plot: at 100+ rows, below the plot is a scroll away
    axes.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False,
                ncol=min(4, max(1, len(series))), borderaxespad=0.2)  # fmt: skip
    if overlap is not None:
        values = [overlap[lang].chrf if lang in overlap else None for lang in order]
        bars.barh(range(len(order)), [v or 0.0 for v in values], color="0.55", height=0.6)
        for y, v in enumerate(values):
            if v is None:
                bars.text(1, y, "—", va="center", fontsize=7, color="0.35")
        bars.set_xlim(0, 100)
        bars.set_xlabel(f"chrF vs {english}")
        bars.tick_params(axis="y", left=False)
        bars.grid(axis="x", color="0.85", linewidth=0.5)
    return figure
