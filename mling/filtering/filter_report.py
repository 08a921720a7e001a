"""The filter report: per language, rows in, dropped per reason, kept, retention; the spread of
retention across languages; each filter's own retention per language; time per stage.

`collect` asks the engine for the aggregates (group-bys over the `decisions` table), and
`build` turns them into the JSON data, the Markdown and the funnel chart.
"""

from __future__ import annotations

from typing import Any

from mling.common.report import markdown_table, new_figure
from mling.filtering.filters import FILTERS, KEPT, REASON_NAMES, REASONS

MIN_LANGUAGE_ROWS = 20  # languages with fewer input rows are listed but left out of the spread


def collect(engine: Any) -> dict[str, Any]:
    """Aggregates from the engine: reason counts and filter flags by language, vocabulary."""
    by_reason = engine.query(
        "SELECT language, coalesce(reason, 'kept') AS reason, count(*) AS rows "
        "FROM decisions GROUP BY language, coalesce(reason, 'kept')"
    ).to_pylist()
    flag_sums = ", ".join(
        f"CAST(sum(CASE WHEN {name} THEN 1 ELSE 0 END) AS BIGINT) AS {name}" for name in FILTERS
    )
    standalone = engine.query(
        f"SELECT language, count(*) AS well_formed, {flag_sums} "
        "FROM decisions WHERE malformed IS NULL GROUP BY language"
    ).to_pylist()
    vocabulary = engine.query(
        "SELECT min_count, vocabulary_tokens, distinct_tokens FROM vocabulary"
    ).to_pylist()
    return {
        "by_reason": by_reason,
        "standalone": standalone,
        "vocabulary": vocabulary[0] if vocabulary else {},
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def language_rows(aggregates: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per language, most rows first: rows, kept, retention, dropped per reason, and
    each filter's standalone retention among well-formed rows (ignoring the other filters)."""
    languages: dict[str, dict[str, Any]] = {}
    for row in aggregates["by_reason"]:
        entry = languages.setdefault(
            row["language"], {"language": row["language"], "rows": 0, "kept": 0, "dropped": {}}
        )
        entry["rows"] += row["rows"]
        if row["reason"] == KEPT:
            entry["kept"] += row["rows"]
        else:
            entry["dropped"][row["reason"]] = row["rows"]
    for row in aggregates["standalone"]:
        entry = languages[row["language"]]
        entry["well_formed"] = row["well_formed"]
        entry["filter_retention"] = {
            name: _ratio(row["well_formed"] - row[name], row["well_formed"]) for name in FILTERS
        }
    for entry in languages.values():
        entry["retention"] = _ratio(entry["kept"], entry["rows"])
        entry["dropped"] = {
            name: entry["dropped"][name] for name in REASON_NAMES if name in entry["dropped"]
        }
        entry.setdefault("well_formed", 0)
        entry.setdefault("filter_retention", {name: None for name in FILTERS})
    return sorted(languages.values(), key=lambda e: (-e["rows"], e["language"]))


def retention_spread(languages: list[dict[str, Any]], overall: float | None) -> dict[str, Any]:
    """Lowest and highest retention among languages with MIN_LANGUAGE_ROWS rows or more, and
    each against the overall rate: an unfair filter shows as a low `lowest_vs_overall`."""
    counted = [
        e for e in languages if e["rows"] >= MIN_LANGUAGE_ROWS and e["retention"] is not None
    ]
    if not counted or not overall:
        return {"languages_counted": len(counted), "min_rows": MIN_LANGUAGE_ROWS}
    low = min(counted, key=lambda e: (e["retention"], e["language"]))
    high = max(counted, key=lambda e: (e["retention"], e["language"]))
    return {
        "languages_counted": len(counted),
        "min_rows": MIN_LANGUAGE_ROWS,
        "lowest": {"language": low["language"], "retention": low["retention"]},
        "highest": {"language": high["language"], "retention": high["retention"]},
        "lowest_vs_overall": low["retention"] / overall,
        "highest_vs_overall": high["retention"] / overall,
    }


def build(
    aggregates: dict[str, Any],
    input_rows: int,
    written_rows: int,
    stages: list[tuple[str, float]],
    settings: dict[str, Any],
) -> tuple[dict[str, Any], str, Any]:
    """(JSON data, Markdown, matplotlib figure) for `mling.common.report.write_report`."""
    languages = language_rows(aggregates)
    kept = sum(e["kept"] for e in languages)
    dropped = {name: sum(e["dropped"].get(name, 0) for e in languages) for name in REASON_NAMES}
    total_dropped = sum(dropped.values())
    overall = _ratio(kept, input_rows)
    seconds = sum(s for _, s in stages)
    data = {
        "accounting": {
            "input_rows": input_rows,
            "kept": kept,
            "dropped": total_dropped,
            "kept_plus_dropped_equals_input": kept + total_dropped == input_rows,
            "kept_rows_written": written_rows,
            "written_equals_kept": written_rows == kept,
        },
        "dropped_by_reason": dropped,
        "reason_order": list(REASON_NAMES),
        "retention": overall,
        "retention_spread": retention_spread(languages, overall),
        "languages": languages,
        "vocabulary": aggregates["vocabulary"],
        "stages": [{"stage": name, "seconds": round(s, 3)} for name, s in stages],
        "seconds": round(seconds, 3),
        "rows_per_second": round(input_rows / seconds, 1) if seconds else None,
        "settings": settings,
    }
    return data, _markdown(data), _figure(data)


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"


def _markdown(data: dict[str, Any]) -> str:
    accounting = data["accounting"]
    spread = data["retention_spread"]
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
    if "lowest" in spread:
        lines += [
            f"Retention spread over {spread['languages_counted']} languages with at least "
            f"{spread['min_rows']} rows: lowest {spread['lowest']['language']} "
            f"{_percent(spread['lowest']['retention'])} ({spread['lowest_vs_overall']:.2f}x overall), "
            f"highest {spread['highest']['language']} {_percent(spread['highest']['retention'])} "
            f"({spread['highest_vs_overall']:.2f}x overall).",
            "",
        ]
    lines += ["## Dropped by reason (first failing filter, in this order)", ""]
    meanings = {r.name: r.meaning for r in REASONS}
    rows = [(name, meanings[name], count) for name, count in data["dropped_by_reason"].items()]
    lines += [
        markdown_table(["reason", "meaning", "rows"], rows + [(KEPT, "", accounting["kept"])]),
        "",
    ]
    lines += ["## Per language", ""]
    reasons = [name for name, count in data["dropped_by_reason"].items() if count]
    table = [
        [e["language"], e["rows"], e["kept"], _percent(e["retention"])]
        + [e["dropped"].get(name, 0) for name in reasons]
        for e in data["languages"][:30]
    ]
    lines += [markdown_table(["language", "rows", "kept", "retention", *reasons], table), ""]
    if len(data["languages"]) > 30:
        lines += [f"({len(data['languages']) - 30} more languages in report.json)", ""]
    lines += ["## Each filter alone: retention of well-formed rows per language", ""]
    table = [
        [e["language"], e["well_formed"]]
        + [_percent(e["filter_retention"][name]) for name in FILTERS]
        for e in data["languages"][:30]
    ]
    lines += [markdown_table(["language", "well-formed", *FILTERS], table), ""]
    lines += ["## Stages", ""]
    lines += [
        markdown_table(
            ["stage", "seconds"], [(s["stage"], f"{s['seconds']:.2f}") for s in data["stages"]]
        )
    ]
    return "\n".join(lines)


def _figure(data: dict[str, Any]) -> Any:
    """Funnel: rows left after each reason in order; beside it, retention per language."""
    figure, placeholder = new_figure(12.0, 5.0)
    placeholder.remove()
    funnel, per_language = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    remaining = data["accounting"]["input_rows"]
    labels, values = ["input"], [remaining]
    for name, count in data["dropped_by_reason"].items():
        if count:
            remaining -= count
            labels.append(f"- {name}")
            values.append(remaining)
    funnel.barh(range(len(values)), values, color="#4c72b0")
    funnel.set_yticks(range(len(values)), labels)
    funnel.invert_yaxis()
    funnel.set_xlabel("rows remaining")
    funnel.set_title("Filter funnel (reasons in order)")
    languages = [e for e in data["languages"] if e["retention"] is not None][:20]
    per_language.bar(
        [e["language"] for e in languages], [e["retention"] for e in languages], color="#55a868"
    )
    if data["retention"] is not None:
        per_language.axhline(data["retention"], color="black", linestyle="--", label="overall")
        per_language.legend()
    per_language.set_ylim(0, 1)
    per_language.set_ylabel("retention")
    per_language.set_title("Retention per language (most rows first)")
    per_language.tick_params(axis="x", rotation=60)
    figure.tight_layout()
    return figure
