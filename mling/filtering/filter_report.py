"""The filter report, laid out to read at 100+ languages: the retention across languages first
(overall, median, lowest, the languages under 0.85x overall), then per language, grouped by
script: rows in, dropped per reason, kept, retention, and each filter's own retention; time per
stage. The chart: the funnel, and every language's retention as a sorted row.

`collect` asks the engine for the aggregates (group-bys over the `decisions` table), and
`build` turns them into the JSON data, the Markdown and the chart.
"""

from __future__ import annotations

import statistics
from typing import Any

from mling.common.report import figure_bytes, markdown_table, new_figure
from mling.common.scripts import group_by_script, language_script, script_name
from mling.filtering import reasons
from mling.filtering.language_estimate import count_interval, estimate_counts
from mling.filtering.reasons import KEPT, filter_names, reason_names

MIN_LANGUAGE_ROWS = 20  # languages with fewer input rows are listed but left out of the spread
BELOW = 0.85  # a language under this share of the overall retention is called out
MAX_LISTED = 30  # languages named under the summary, worst first (all of them in report.json)
LOW = "▼"  # marks a retention under BELOW x overall in the per-language tables
ROW_INCHES = 0.2  # chart height per language: 8-point labels one row apart never touch


def collect(engine: Any) -> dict[str, Any]:
    """Exact aggregates from the engine: rows per reason (and kept), the vocabulary."""
    by_reason = engine.query(
        "SELECT coalesce(reason, 'kept') AS reason, count(*) AS rows "
        "FROM decisions GROUP BY coalesce(reason, 'kept')"
    ).to_pylist()
    vocabulary = engine.query(
        "SELECT min_count, vocabulary_tokens, distinct_tokens FROM vocabulary"
    ).to_pylist()
    return {
        "by_reason": {row["reason"]: row["rows"] for row in by_reason},
        "vocabulary": vocabulary[0] if vocabulary else {},
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def language_rows(
    totals: dict[str, int], groups: dict[tuple[str, str], dict[str, int]]
) -> list[dict[str, Any]]:
    """One dict per language, most rows first: its script (ISO 15924, from the code), rows,
    kept, retention, dropped per reason, and each filter's standalone retention among
    well-formed rows (ignoring the other filters).

    `totals`: exact rows per reason (and `kept`); `groups`: (reason or `kept`, language) ->
    labelled rows and, of them, the rows failing each filter on its own. Kept rows are all
    labelled; a reason whose rows are only partly labelled has its figures estimated
    (`mling/filtering/language_estimate.py`), each with its 95% interval (`*_interval`: equal
    bounds where exact).
    """
    sample: dict[str, dict[str, int]] = {}
    for (reason, language), group in groups.items():
        sample.setdefault(reason, {})[language] = group["rows"]
    kept = sample.pop(KEPT, {})
    filters = filter_names()
    dropped_reasons = [name for name in reason_names() if totals.get(name)]
    sampled = {name: sum(sample.get(name, {}).values()) for name in dropped_reasons}
    estimates = {
        name: estimate_counts(sample.get(name, {}), totals[name]) for name in dropped_reasons
    }
    entries = []
    for language in sorted({lang for _, lang in groups}):
        k = kept.get(language, 0)
        dropped, intervals = {}, {}
        for name in dropped_reasons:
            x = sample.get(name, {}).get(language, 0)
            found = estimates[name].get(language)
            if found is not None and found.count:
                dropped[name] = found.count
            intervals[name] = list(count_interval(x, sampled[name], totals[name]))
        rows = k + sum(dropped.values())
        low = k + sum(lo for lo, _ in intervals.values())
        high = k + sum(hi for _, hi in intervals.values())
        well_formed = k + sum(dropped.get(name, 0) for name in filters)
        retention, retention_interval = {}, {}
        for name in filters:
            fails = 0.0
            fails_low = fails_high = 0
            for reason in filters:
                if reason not in sampled or not sampled[reason]:
                    continue
                x = groups.get((reason, language), {}).get(name, 0)
                fails += totals[reason] * x / sampled[reason]
                lo, hi = count_interval(x, sampled[reason], totals[reason])
                fails_low, fails_high = fails_low + lo, fails_high + hi
            retention[name] = _ratio(well_formed - fails, well_formed)
            retention_interval[name] = [
                _ratio(max(well_formed - fails_high, 0), well_formed),
                _ratio(well_formed - min(fails_low, well_formed), well_formed),
            ]
        entries.append(
            {
                "language": language,
                "script": language_script(language),
                "rows": rows,
                "rows_interval": [low, high],
                "kept": k,
                "retention": _ratio(k, rows),
                "retention_interval": [_ratio(k, high), _ratio(k, low)],
                "dropped": dropped,
                "dropped_interval": intervals,
                "well_formed": well_formed,
                "filter_retention": retention,
                "filter_retention_interval": retention_interval,
            }
        )
    return sorted(entries, key=lambda e: (-e["rows"], e["language"]))


def language_method(
    totals: dict[str, int], groups: dict[tuple[str, str], dict[str, int]], settings: dict[str, Any]
) -> dict[str, Any]:
    """Which language figures are exact and which estimated, and how."""
    sampled = {name: 0 for name in reason_names() if totals.get(name)}
    for (reason, _), group in groups.items():
        if reason != KEPT:
            sampled[reason] += group["rows"]
    dropped = sum(totals.get(name, 0) for name in reason_names())
    estimated = sum(sampled.values()) < dropped
    return {
        "language_id": settings["language_id"],
        "kept": "exact",
        "dropped": "estimated" if estimated else "exact",
        "sample_per_reason": settings["language_sample"],
        "seed": settings["language_seed"],
        "dropped_rows": dropped,
        "labelled_dropped_rows": sum(sampled.values()),
        "sampled_by_reason": sampled,
        "confidence": 0.95,
        "interval": "Wilson score interval of the sampled proportion, finite-population "
        "correction, times the reason's exact dropped count; a language's rows: the sum of "
        "its reasons' bounds",
        "rounding": "largest remainder: each reason's per-language estimates add up to its "
        "exact dropped count",
    }


def counted_languages(languages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The languages the spread is over: MIN_LANGUAGE_ROWS input rows or more, and a retention."""
    return [e for e in languages if e["rows"] >= MIN_LANGUAGE_ROWS and e["retention"] is not None]


def retention_spread(languages: list[dict[str, Any]], overall: float | None) -> dict[str, Any]:
    """Retention across the languages with MIN_LANGUAGE_ROWS rows or more, each figure also
    against the overall rate: lowest, highest, median, and (`below`, worst first) every language
    under BELOW x overall. An unfair filter shows as a low `lowest_vs_overall` and a long
    `below`."""
    counted = counted_languages(languages)
    if not counted or not overall:
        return {"languages_counted": len(counted), "min_rows": MIN_LANGUAGE_ROWS}
    ranked = sorted(counted, key=lambda e: (e["retention"], e["language"]))
    low, high = ranked[0], max(counted, key=lambda e: (e["retention"], e["language"]))
    median = statistics.median(e["retention"] for e in counted)
    return {
        "languages_counted": len(counted),
        "min_rows": MIN_LANGUAGE_ROWS,
        "lowest": {"language": low["language"], "retention": low["retention"]},
        "highest": {"language": high["language"], "retention": high["retention"]},
        "lowest_vs_overall": low["retention"] / overall,
        "highest_vs_overall": high["retention"] / overall,
        "median": median,
        "median_vs_overall": median / overall,
        "below_share": BELOW,
        "below": [
            {"language": e["language"], "retention": e["retention"]}
            for e in ranked
            if e["retention"] < BELOW * overall
        ],
    }


def summarize(
    aggregates: dict[str, Any],
    groups: dict[tuple[str, str], dict[str, int]],
    input_rows: int,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The report's JSON data as soon as the decisions and the labels are known, before the
    rows are written (`complete` adds the rest): enough for `figure_png`.

    `aggregates` from `collect`; `groups` from the language pass
    (`mling.filtering.language_pass.LabelledRows.groups`).
    """
    totals = aggregates["by_reason"]
    languages = language_rows(totals, groups)
    kept = totals.get(KEPT, 0)
    dropped = {name: totals.get(name, 0) for name in reason_names()}
    total_dropped = sum(dropped.values())
    overall = _ratio(kept, input_rows)
    return {
        "accounting": {
            "input_rows": input_rows,
            "kept": kept,
            "dropped": total_dropped,
            "kept_plus_dropped_equals_input": kept + total_dropped == input_rows,
        },
        "dropped_by_reason": dropped,
        "reason_order": list(reason_names()),
        "retention": overall,
        "retention_spread": retention_spread(languages, overall),
        "language_figures": language_method(totals, groups, settings),
        "languages": languages,
        "vocabulary": aggregates["vocabulary"],
        "settings": settings,
    }


def complete(
    data: dict[str, Any], written_rows: int, stages: list[tuple[str, float]]
) -> dict[str, Any]:
    """`summarize`'s data with the rows written and each stage's seconds, for `markdown`."""
    seconds = sum(s for _, s in stages)
    accounting = data["accounting"]
    return {
        **data,
        "accounting": {
            **accounting,
            "kept_rows_written": written_rows,
            "written_equals_kept": written_rows == accounting["kept"],
        },
        "stages": [{"stage": name, "seconds": round(s, 3)} for name, s in stages],
        "seconds": round(seconds, 3),
        "rows_per_second": round(accounting["input_rows"] / seconds, 1) if seconds else None,
    }


def build(
    aggregates: dict[str, Any],
    groups: dict[tuple[str, str], dict[str, int]],
    input_rows: int,
    written_rows: int,
    stages: list[tuple[str, float]],
    settings: dict[str, Any],
) -> tuple[dict[str, Any], str, Any]:
    """(JSON data, Markdown, matplotlib figure) for `mling.common.report.write_report`, in one
    call (the pipeline calls the parts, to draw the figure while it writes the rows)."""
    data = complete(summarize(aggregates, groups, input_rows, settings), written_rows, stages)
    return data, markdown(data), _figure(data)


def figure_png(data: dict[str, Any]) -> bytes:
    """The report's figure as PNG bytes, from `summarize`'s data; run in a forked process by
    the pipeline while it writes the kept rows (matplotlib's import and drawing are most of the
    report's cost, and nothing else waits on them)."""
    return figure_bytes(_figure(data), tight=False)  # laid out by _figure's tight_layout


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"


def _with_interval(value: Any, interval: list | None, show: Any = str) -> str | None:
    """`value` alone where exact (equal bounds), else `value [low–high]`."""
    if value is None:
        return None
    if not interval or None in interval or interval[0] == interval[1]:
        return show(value)
    return f"{show(value)} [{show(interval[0])}–{show(interval[1])}]"


def _method_line(method: dict[str, Any], kept: int) -> str:
    """What is exact and what is estimated, in one paragraph."""
    if not method["language_id"]:
        return "Language ID off (`--no-language-id`): every row is `und`."
    if method["dropped"] == "exact":
        return "Every row labelled by language ID: all figures exact."
    return (
        f"Exact: the {kept} kept rows (each labelled by language ID) and every total per reason. "
        f"Estimated: the dropped rows' languages, from a seeded random sample of "
        f"{method['labelled_dropped_rows']} of the {method['dropped_rows']} dropped rows (at most "
        f"{method['sample_per_reason']} per reason, seed {method['seed']}; a reason with fewer "
        "rows is labelled whole, exactly). Each reason's sample is scaled to its exact dropped "
        "count and rounded by largest remainder, so the languages add up to it; brackets give "
        "the 95% interval (Wilson score with finite-population correction; a language's rows: "
        "the sum of its reasons' bounds). `--language-sample all` labels every row."
    )


def _summary(data: dict[str, Any]) -> list[str]:
    """Markdown lines: retention across the counted languages, each figure against overall."""
    spread = data["retention_spread"]
    lines = ["## Retention across languages", ""]
    if "lowest" not in spread:
        return lines + [
            f"No language has {spread['min_rows']} input rows or more (or nothing was kept): "
            "no spread to show.",
            "",
        ]
    overall = data["retention"]
    estimated = data["language_figures"]["dropped"] == "estimated"
    below = spread["below"]
    named = ", ".join(f"{e['language']} {_percent(e['retention'])}" for e in below[:MAX_LISTED]) + (
        f" and {len(below) - MAX_LISTED} more" if len(below) > MAX_LISTED else ""
    )
    lowest, highest = spread["lowest"], spread["highest"]
    return lines + [
        f"Over the {spread['languages_counted']} languages with at least {spread['min_rows']} "
        "input rows (those with fewer are in the tables below, not in these figures)"
        + ("; figures estimated, see Per language." if estimated else "."),
        "",
        f"- overall: {_percent(overall)}",
        f"- median language: {_percent(spread['median'])} "
        f"({spread['median_vs_overall']:.2f}x overall)",
        f"- lowest: {lowest['language']} {_percent(lowest['retention'])} "
        f"({spread['lowest_vs_overall']:.2f}x overall); highest: {highest['language']} "
        f"{_percent(highest['retention'])} ({spread['highest_vs_overall']:.2f}x overall)",
        f"- below {spread['below_share']:g}x overall (under "
        f"{_percent(spread['below_share'] * overall)}): "
        + (
            f"{len(below)} {'language' if len(below) == 1 else 'languages'}, worst first: {named}"
            if below
            else "none"
        ),
        "",
    ]


def _groups(data: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """[(script, language entries)]: the largest script first, in each the most rows first."""
    entries = {e["language"]: e for e in data["languages"]}
    scripts = {language: e["script"] for language, e in entries.items()}
    groups = group_by_script(list(entries), scripts)  # data["languages"]: most rows first
    return [(code, [entries[language] for language in members]) for code, members in groups]


def markdown(data: dict[str, Any]) -> str:
    accounting = data["accounting"]
    lines = [
        "# Filter report",
        "",
        f"{accounting['input_rows']} rows in, {accounting['kept']} kept, {accounting['dropped']} dropped "
        f"(kept + dropped = input: {'yes' if accounting['kept_plus_dropped_equals_input'] else 'NO'}); "
        f"retention {_percent(data['retention'])}; {data['rows_per_second']} rows/s with engine "
        f"`{data['settings']['engine']}`.",
        "",
    ]
    columns = data["settings"].get("columns")
    if columns and (columns["preset"] or columns["map"]):
        how = "recognized from its columns" if columns["detected"] else "as asked"
        renames = ", ".join(f"`{src}` → `{dest}`" for src, dest in columns["map"].items())
        lines += [f"Input layout: {columns['preset'] or 'pair schema'} ({how}); {renames}.", ""]
    lines += _summary(data)
    lines += ["## Dropped by reason (first failing filter, in this order)", ""]
    meanings = {r.name: r.meaning for r in reasons.REASONS}
    rows = [(name, meanings[name], count) for name, count in data["dropped_by_reason"].items()]
    lines += [
        markdown_table(["reason", "meaning", "rows"], rows + [(KEPT, "", accounting["kept"])]),
        "",
    ]
    method = data["language_figures"]
    groups = _groups(data)
    low = {e["language"] for e in data["retention_spread"].get("below", [])}
    lines += [
        "## Per language",
        "",
        _method_line(method, accounting["kept"]),
        "",
        "Every language, grouped by the script its code is usually written in (ISO 15924, CLDR's "
        "likely script; `und`: Zzzz), the largest group first; in each group the most rows "
        f"first. {LOW}: retention under {BELOW:g}x overall, among the languages with at least "
        f"{MIN_LANGUAGE_ROWS} rows.",
        "",
        "Scripts: "
        + ", ".join(f"{script_name(code)} ({code}) {len(members)}" for code, members in groups)
        + ".",
        "",
    ]
    dropping = [name for name, count in data["dropped_by_reason"].items() if count]

    def retention(e: dict[str, Any]) -> str | None:
        shown = _with_interval(e["retention"], e["retention_interval"], _percent)
        return f"{shown} {LOW}" if e["language"] in low else shown

    table = [
        [
            e["language"],
            code,
            _with_interval(e["rows"], e["rows_interval"]),
            e["kept"],
            retention(e),
        ]
        + [
            _with_interval(e["dropped"].get(name, 0), e["dropped_interval"].get(name))
            for name in dropping
        ]
        for code, members in groups
        for e in members
    ]
    lines += [
        markdown_table(["language", "script", "rows", "kept", "retention", *dropping], table),
        "",
    ]
    lines += ["## Each filter alone: retention of well-formed rows per language", ""]
    if method["dropped"] == "estimated":
        lines += [
            "Estimated from the same sample (well-formed rows: kept, exact, plus the estimated "
            "dropped ones); 95% intervals in report.json (`filter_retention_interval`).",
            "",
        ]
    lines += ["Languages in the order of the table above.", ""]
    filters = filter_names()
    table = [
        [e["language"], code, e["well_formed"]]
        + [_percent(e["filter_retention"][name]) for name in filters]
        for code, members in groups
        for e in members
    ]
    lines += [markdown_table(["language", "script", "well-formed", *filters], table), ""]
    lines += ["## Stages", ""]
    lines += [
        markdown_table(
            ["stage", "seconds"], [(s["stage"], f"{s['seconds']:.2f}") for s in data["stages"]]
        )
    ]
    return "\n".join(lines)


def _figure(data: dict[str, Any]) -> Any:
    """Above, the funnel: rows left after each reason in order. Below, one row per language with
    MIN_LANGUAGE_ROWS rows or more, lowest retention at the top, with its 95% interval, the
    overall retention and BELOW x overall; the figure grows ROW_INCHES per language."""
    remaining = data["accounting"]["input_rows"]
    labels, values = ["input"], [remaining]
    for name, count in data["dropped_by_reason"].items():
        if count:
            remaining -= count
            labels.append(f"- {name}")
            values.append(remaining)
    languages = sorted(
        counted_languages(data["languages"]), key=lambda e: (e["retention"], e["language"])
    )
    funnel_inches = 0.3 * len(values) + 1.2
    language_inches = ROW_INCHES * len(languages) + 1.6
    figure, placeholder = new_figure(8.0, funnel_inches + language_inches)
    placeholder.remove()
    funnel, per_language = figure.subplots(
        2, 1, gridspec_kw={"height_ratios": [funnel_inches, language_inches]}
    )
    funnel.barh(range(len(values)), values, color="#4c72b0")
    funnel.set_yticks(range(len(values)), labels)
    funnel.invert_yaxis()
    funnel.set_xlabel("rows remaining")
    funnel.set_title("Filter funnel (reasons in order)")

    overall = data["retention"]
    low = {e["language"] for e in data["retention_spread"].get("below", [])}
    ys = range(len(languages))
    errors = [
        [e["retention"] - (e["retention_interval"][0] or 0) for e in languages],
        [(e["retention_interval"][1] or 0) - e["retention"] for e in languages],
    ]
    per_language.barh(
        ys,
        [e["retention"] for e in languages],
        xerr=errors if languages else None,
        height=0.7,
        color=["#c44e52" if e["language"] in low else "#55a868" for e in languages],
        error_kw={"elinewidth": 0.8, "ecolor": "0.3"},
    )
    # the script beside the code: a low run of one script is a script problem, not a language's
    per_language.set_yticks(ys, [f"{e['language']} ({e['script']})" for e in languages], fontsize=8)
    if languages:
        per_language.set_ylim(len(languages) - 0.5, -0.5)
    else:
        per_language.text(0.5, 0.5, f"no language with {MIN_LANGUAGE_ROWS} rows or more",
                          ha="center", va="center", transform=per_language.transAxes)  # fmt: skip
    if overall is not None:
        per_language.axvline(overall, color="black", linestyle="--", label="overall")
        per_language.axvline(
            BELOW * overall, color="#c44e52", linestyle=":", label=f"{BELOW:g}x overall"
        )
        # between the title and the bars: at 100+ rows, below the plot is a scroll away
        per_language.legend(
            fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False
        )
    per_language.set_xlim(0, 1)
    per_language.set_xlabel("retention (95% interval where estimated)")
    per_language.grid(axis="x", color="0.85", linewidth=0.5)
    per_language.set_title(
        f"Retention per language, lowest first ({len(languages)} languages with at least "
        f"{MIN_LANGUAGE_ROWS} rows)",
        fontsize=9,
        pad=18,
    )
    figure.tight_layout()
    return figure
