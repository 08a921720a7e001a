"""The per-language report: `report.json` (stable keys), `report.md`, `report.png`, and the
summary printed on stdout. Written with the toolkit's shared report writer.

Laid out to read at 100+ languages, as the filter and retrieval reports are: the spread across
languages first, with the languages that miss the [UNK] target and the costliest by tokens per
word named under it; then every language once, grouped by the script its text is written in;
the chart one row per language, costliest at the top, up to CHART_LANGUAGES of them."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from tokenizers import Tokenizer

from mling.common.report import markdown_table, new_figure, write_report
from mling.common.scripts import group_by_script
from mling.vocab.alphabet import Alphabet
from mling.vocab.balance import effective_alpha
from mling.vocab.metrics import (
    LanguageMetrics,
    measure_languages,
    script_shares,
    spread,
    vocabulary,
)
from mling.vocab.sample import Census, HeldOut, SampleStats

UNK_TARGET = 0.005  # held-out [UNK] rate every well-represented language must stay under
WORST_LISTED = 10  # languages named under the summary by tokens per word (all in the table)
MAX_LISTED = 30  # languages named under the summary as over the [UNK] target, worst first
OVER = "▲"  # marks an [UNK] rate at or over the target in the per-language tables
ROW_INCHES = 0.2  # chart height per language: 8-point labels one row apart never touch
CHART_SCRIPTS = 15  # scripts drawn in the vocabulary-share panel, largest first
# Languages drawn as chart rows. Each costs about 7 ms of CPU (tick label layout, glyphs, PNG
# pixels): at 755 languages the chart took 5 s, more than the rest of the build bar training,
# for an image 18,000 pixels tall; report.md lists every language.
CHART_LANGUAGES = 60


def evaluate(
    tokenizer: Tokenizer,
    held_out: Mapping[str, HeldOut],
    train_lines: Mapping[str, int] | None = None,
    min_train_lines: int = 200,
    english: str = "en",
    tokens: list[str] | None = None,
) -> dict:
    """Per-language metrics, their spread, the [UNK] target and the vocabulary's scripts.

    Parity is left out for the reference language itself (`english`). `tokens` is the
    vocabulary in id order, when the caller has it.
    """
    tokens = tokens or vocabulary(tokenizer)
    # Counting scripts is Python work; it runs while the Rust tokenizer encodes the lines.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        counted = pool.submit(script_shares, tokens)
        metrics: dict[str, LanguageMetrics] = measure_languages(
            tokenizer,
            {
                language: (lines.texts, None if language == english else lines.english)
                for language, lines in sorted(held_out.items())
            },
            tokens,
        )
        scripts = counted.result()
    languages = {}
    for language, values in metrics.items():
        row = values.as_dict()
        if train_lines is not None:
            row["train_lines"] = train_lines.get(language, 0)
        languages[language] = row
    result = {
        "vocab_size": len(tokens),
        "languages": languages,
        "summary": {
            name: spread({lang: row[name] for lang, row in languages.items()})
            for name in ("unk_rate", "unk_char_rate", "fertility", "parity", "parity_unk_as_chars")
        },
        "scripts": {
            name: {"tokens": count, "share": count / max(1, sum(scripts.values()))}
            for name, count in scripts.items()
        },
    }
    if train_lines is not None:
        judged = {
            lang: row["unk_rate"]
            for lang, row in languages.items()
            if row["train_lines"] >= min_train_lines and row["unk_rate"] is not None
        }
        failing = sorted(lang for lang, rate in judged.items() if rate >= UNK_TARGET)
        result["unk_target"] = {
            "threshold": UNK_TARGET,
            "min_train_lines": min_train_lines,
            "languages": len(judged),
            "failing": failing,
            "met": not failing,
        }
    return result


def preload_plotting() -> threading.Thread:
    """Import matplotlib in a background thread (started while the trainer merges, which
    leaves part of a core idle); a later import waits for it instead of starting over.
    Join the thread before forking again: a forked child would inherit the import lock."""

    def load() -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401

    thread = threading.Thread(target=load, name="preload_plotting", daemon=True)
    thread.start()
    return thread


def build_report(
    evaluation: dict,
    output: Path,
    configs: Mapping[str, object],
    census: Census,
    rates: Mapping[str, float],
    stats: SampleStats,
    alphabet: Alphabet,
) -> dict:
    """report.json of a build: the evaluation plus what went in (configs, corpus, sample,
    alphabet), so the report alone says how the vocabulary was made."""
    languages = sorted(census.lines, key=lambda lang: (-census.lines[lang], lang))
    return evaluation | {
        "output": str(output),
        "algorithm": configs["train"].algorithm,
        "config": {
            name: dataclasses.asdict(config)
            | ({"inputs": list(config.inputs)} if name == "corpus" else {})
            for name, config in configs.items()
        },
        "corpus": {
            "lines": sum(census.lines.values()),
            "held_out_lines": census.held_out_total,
            "skipped": {k: v for k, v in sorted(census.skipped.items()) if v},
            "label_sources": dict(census.label_sources),
        },
        "sample": {
            "lines": sum(stats.lines.values()),
            "bytes": sum(stats.bytes.values()),
            "effective_alpha": effective_alpha(census.lines, stats.lines),
            "languages": {
                lang: {
                    "corpus_lines": census.lines[lang],
                    "sampled_lines": stats.lines.get(lang, 0),
                    "rate": rates[lang],
                }
                for lang in languages
            },
        },
        "alphabet": {
            "chars": len(alphabet.chars),
            "continuation": len(alphabet.continuation),
            "by_rule": alphabet.by_rule,
            "dropped": alphabet.dropped,
            "uncovered": alphabet.uncovered,
            "exemplar_sources": alphabet.exemplar_sources,
        },
    }


def target_line(target: dict) -> str:
    """One stdout line on the [UNK] target."""
    verdict = "met" if target["met"] else "NOT met in " + ", ".join(target["failing"])
    return (
        f"  [UNK] target (<{100 * target['threshold']:.1f}% where >= "
        f"{target['min_train_lines']} training lines): {verdict} "
        f"({target['languages']} languages judged)"
    )


def _pct(value: float | None, digits: int = 2) -> str | None:
    return None if value is None else f"{100 * value:.{digits}f}"


def _num(value: float | None, digits: int = 2) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _spread_table(summary: Mapping[str, dict]) -> str:
    rows = []
    for name, label, fmt in (
        ("unk_rate", "[UNK] rate %", _pct),
        ("unk_char_rate", "[UNK] characters %", _pct),
        ("fertility", "tokens per word", _num),
        ("parity", "parity vs English", _num),
        ("parity_unk_as_chars", "parity, [UNK] as characters", _num),
    ):
        s = summary.get(name, {})
        if not s.get("languages"):
            rows.append([label, 0, None, None, None, None])
            continue
        rows.append(
            [
                label,
                s["languages"],
                fmt(s["median"]),
                fmt(s["mean"]),
                f"{fmt(s['worst'])} ({s['worst_language']})",
                f"{fmt(s['best'])} ({s['best_language']})",
            ]
        )
    return markdown_table(["metric", "languages", "median", "mean", "worst", "best"], rows)


def _costliest(languages: Mapping[str, dict]) -> list[str]:
    """Languages by tokens per word, most first (no figure last), ties by code."""
    return sorted(
        languages,
        key=lambda lang: (
            languages[lang]["fertility"] is None,
            -(languages[lang]["fertility"] or 0),
            lang,
        ),
    )


def script_groups(languages: Mapping[str, dict]) -> list[tuple[str, list[str]]]:
    """[(script name, languages)]: the largest group first, in each the most tokens per word
    first. The script is the one a language's held-out text is mostly written in."""
    return group_by_script(
        _costliest(languages), {lang: row["script"] for lang, row in languages.items()}
    )


def _groups_line(groups: list[tuple[str, list[str]]]) -> str:
    """'Scripts: Latin 75, Cyrillic 12, ...'."""
    return "Scripts: " + ", ".join(f"{name} {len(members)}" for name, members in groups) + "."


def _over(rate: float | None, threshold: float) -> str | None:
    shown = _pct(rate)
    return f"{shown} {OVER}" if rate is not None and rate >= threshold else shown


def _language_table(languages: Mapping[str, dict], threshold: float = UNK_TARGET) -> str:
    has_train = any("train_lines" in row for row in languages.values())
    headers = ["language", "script"] + (["train lines"] if has_train else [])
    headers += ["held-out lines", "[UNK] %", "[UNK] chars %", "tokens/word", "parity"]
    rows = []
    for script, members in script_groups(languages):
        for lang in members:
            row = languages[lang]
            rows.append(
                [lang, script]
                + ([row.get("train_lines", 0)] if has_train else [])
                + [
                    row["lines"],
                    _over(row["unk_rate"], threshold),
                    _pct(row["unk_char_rate"]),
                    _num(row["fertility"]),
                    _num(row["parity"]),
                ]
            )
    return markdown_table(headers, rows)


def _language_intro(
    groups: list[tuple[str, list[str]]], threshold: float = UNK_TARGET, ranked_by: str = ""
) -> list[str]:
    """The lines above a per-language table: its order, its marker, its scripts. `ranked_by`
    names the vocabulary whose tokens per word order the rows, when there are several."""
    return [
        "Every language once, grouped by the Unicode script its held-out text is mostly written "
        "in, the largest group first; in each group the most tokens per word first"
        + (f" in {ranked_by}" if ranked_by else "")
        + f" (the costliest languages of a script at the top). {OVER}: [UNK] rate at or over "
        f"{100 * threshold:.1f}%.",
        "",
        _groups_line(groups),
    ]


def problem_lines(evaluation: Mapping) -> list[str]:
    """Markdown bullets under the summary: the languages over the [UNK] target (judged, and
    those with too few training lines to be judged) and the costliest by tokens per word, so a
    reader at 100+ languages sees the problems without scrolling the table."""
    languages = evaluation["languages"]
    target = evaluation.get("unk_target")
    threshold = target["threshold"] if target else UNK_TARGET
    over = sorted(
        (lang for lang, row in languages.items()
         if row["unk_rate"] is not None and row["unk_rate"] >= threshold),
        key=lambda lang: (-languages[lang]["unk_rate"], lang),
    )  # fmt: skip

    def named(langs: list[str]) -> str:
        listed = ", ".join(
            f"{lang} {_pct(languages[lang]['unk_rate'])}%" for lang in langs[:MAX_LISTED]
        )
        return listed + (f" and {len(langs) - MAX_LISTED} more" if len(langs) > MAX_LISTED else "")

    lines = []
    if target:
        failing = [lang for lang in over if lang in target["failing"]]
        unjudged = [lang for lang in over if lang not in target["failing"]]
        lines.append(
            f"- [UNK] target missed (at or over {100 * threshold:.1f}%, "
            f"{target['languages']} languages judged): "
            + (f"{len(failing)}, worst first: {named(failing)}" if failing else "none")
        )
        if unjudged:
            lines.append(
                f"- [UNK] at or over {100 * threshold:.1f}% with fewer than "
                f"{target['min_train_lines']} training lines (not judged): {named(unjudged)}"
            )
    elif over:
        lines.append(f"- [UNK] at or over {100 * threshold:.1f}%: {named(over)}")
    costliest = [lang for lang in _costliest(languages) if languages[lang]["fertility"] is not None]
    if costliest:
        median = evaluation["summary"].get("fertility", {}).get("median")
        shown = costliest[:WORST_LISTED]
        lines.append(
            f"- most tokens per word ({len(shown)} of {len(costliest)}"
            + (f", median {_num(median)}" if median is not None else "")
            + "): "
            + ", ".join(
                f"{lang} {_num(languages[lang]['fertility'])} ({languages[lang]['script']})"
                for lang in shown
            )
        )
    parity = {lang: row["parity"] for lang, row in languages.items() if row["parity"] is not None}
    if parity:
        shown = sorted(parity, key=lambda lang: (-parity[lang], lang))[:WORST_LISTED]
        lines.append(
            f"- highest parity vs English ({len(shown)} of {len(parity)}): "
            + ", ".join(f"{lang} {_num(parity[lang])}" for lang in shown)
        )
    return lines


def _largest(scripts: Mapping[str, dict]) -> list[tuple[str, dict]]:
    """Scripts by vocabulary tokens, most first: report.json stores them by name."""
    return sorted(scripts.items(), key=lambda item: (-item[1]["tokens"], item[0]))


def _script_table(scripts: Mapping[str, dict], limit: int = 25) -> str:
    rows = [
        [name, value["tokens"], _pct(value["share"])] for name, value in _largest(scripts)[:limit]
    ]
    return markdown_table(["script", "tokens", "share %"], rows)


def chart_languages(
    languages: Mapping[str, dict], threshold: float, limit: int = CHART_LANGUAGES
) -> list[str]:
    """The languages the chart draws, most tokens per word first: all of them up to `limit`;
    past it, those at or over the [UNK] target (the worst first), then the costliest, `limit`
    in all."""
    order = _costliest(languages)
    if len(order) <= limit:
        return order
    rate = {lang: languages[lang].get("unk_rate") or 0.0 for lang in order}
    over = sorted((lang for lang in order if rate[lang] >= threshold), key=lambda k: -rate[k])
    chosen = dict.fromkeys(over[:limit])
    for lang in order:
        if len(chosen) >= limit:
            break
        chosen.setdefault(lang)
    return [lang for lang in order if lang in chosen]


def report_figure(evaluations: Mapping[str, dict]):
    """Above, each language as one row (up to CHART_LANGUAGES: `chart_languages`), the most
    tokens per word at the top (by the first vocabulary), labelled with its script, one bar per
    vocabulary, and beside it the [UNK] rate against the target; the figure grows ROW_INCHES
    per language. Below, the vocabulary's tokens per script (the first vocabulary's)."""
    first = next(iter(evaluations.values()))
    threshold = first.get("unk_target", {}).get("threshold", UNK_TARGET)
    order = chart_languages(first["languages"], threshold)
    total = len(first["languages"])
    scripts = _largest(first["scripts"])[:CHART_SCRIPTS]
    language_inches = ROW_INCHES * len(order) + 1.6
    script_inches = ROW_INCHES * len(scripts) + 1.2
    figure, placeholder = new_figure(9.0, language_inches + script_inches)
    placeholder.remove()
    grid = figure.add_gridspec(2, 1, height_ratios=[language_inches, script_inches])
    top = grid[0].subgridspec(1, 2, width_ratios=[3, 1], wspace=0.05)
    fertility = figure.add_subplot(top[0])
    unk = figure.add_subplot(top[1], sharey=fertility)
    shares = figure.add_subplot(grid[1])

    height = 0.8 / max(1, len(evaluations))
    for index, (name, evaluation) in enumerate(evaluations.items()):
        rows = [evaluation["languages"].get(lang, {}) for lang in order]
        ys = [i - 0.4 + (index + 0.5) * height for i in range(len(order))]
        fertility.barh(ys, [r.get("fertility") or 0.0 for r in rows], height=height, label=name,
                       color=f"C{index}")  # fmt: skip
        unk.barh(ys, [100 * (r.get("unk_rate") or 0.0) for r in rows], height=height,
                 color=[("#c44e52" if (r.get("unk_rate") or 0.0) >= threshold else f"C{index}")
                        for r in rows])  # fmt: skip
    # the script beside the code: a costly run of one script is the script's problem
    labels = [f"{lang} ({first['languages'][lang]['script']})" for lang in order]
    fertility.set_yticks(range(len(order)), labels, fontsize=8)
    fertility.set_ylim(len(order) - 0.5, -0.5)
    median = first["summary"].get("fertility", {}).get("median")
    if median is not None:
        fertility.axvline(median, color="black", linestyle="--", linewidth=0.8, label="median")
    fertility.set_xlabel("tokens per word (held out)")
    fertility.grid(axis="x", color="0.85", linewidth=0.5)
    fertility.set_title(
        f"Tokens per word, every language ({len(order)}), most first"
        if len(order) == total
        else f"Tokens per word, {len(order)} of {total} languages, most first (all in report.md)",
        fontsize=9,
        pad=18,
    )
    # between the title and the bars: at 100+ rows, below the plot is a scroll away
    fertility.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False,
                     ncol=min(4, len(evaluations) + 1), borderaxespad=0.2)  # fmt: skip
    unk.axvline(100 * threshold, color="#c44e52", linestyle=":", linewidth=0.8)
    widths = [bar.get_width() * 1.1 for bar in unk.patches]  # none when no language is scored
    unk.set_xlim(0, max([2 * 100 * threshold, *widths]))
    unk.tick_params(axis="y", left=False, labelleft=False)
    unk.set_xlabel("[UNK] rate, %")
    unk.grid(axis="x", color="0.85", linewidth=0.5)
    unk.set_title(f"[UNK] %, target < {100 * threshold:.1f}%", fontsize=9, pad=18)

    shares.barh([n for n, _ in scripts][::-1], [100 * v["share"] for _, v in scripts][::-1])
    shares.set_xlabel("share of the vocabulary, %")
    shares.set_title(f"vocabulary tokens per script, {len(scripts)} largest", fontsize=9)
    figure.tight_layout()
    return figure


def build_markdown(report: dict) -> str:
    """report.md for a build: the spread and the languages that stand out, every language
    grouped by script, the vocabulary per script, sample and alphabet."""
    target = report["unk_target"]
    lines = [
        f"# Vocabulary report: {report['output']}",
        "",
        f"{report['vocab_size']} tokens ({report['algorithm']}): "
        f"{report['alphabet']['chars']} characters, "
        f"{report['alphabet']['continuation']} `##` character forms, the rest learned pieces. "
        f"Metrics on held-out lines never trained on.",
        "",
        f"[UNK] target (< {100 * target['threshold']:.1f}% in every language with at least "
        f"{target['min_train_lines']} training lines): "
        + (
            f"**met** in {target['languages']} languages."
            if target["met"]
            else f"**not met** in {', '.join(target['failing'])}."
        ),
        "",
        "## Spread across languages",
        "",
        _spread_table(report["summary"]),
        "",
        *problem_lines(report),
        "",
        "## Per language",
        "",
        *_language_intro(script_groups(report["languages"]), target["threshold"]),
        "",
        _language_table(report["languages"], target["threshold"]),
        "",
        "## Vocabulary share per script",
        "",
        _script_table(report["scripts"]),
        "",
        "## Sample",
        "",
        f"{report['sample']['lines']} lines ({report['sample']['bytes']} bytes) sampled from "
        f"{report['corpus']['lines']} training lines in {len(report['sample']['languages'])} "
        f"languages, alpha {report['config']['sampling']['alpha']} "
        f"(realised {_num(report['sample']['effective_alpha']) or 'n/a: equal sizes'}), seed "
        f"{report['config']['sampling']['seed']}. Labels: "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["corpus"]["label_sources"].items()))
        + ".",
        "",
        markdown_table(
            ["language", "corpus lines", "sampled lines", "copies per line"],
            [
                [lang, row["corpus_lines"], row["sampled_lines"], _num(row["rate"], 3)]
                # most lines first; report.json stores them by code
                for lang, row in sorted(
                    report["sample"]["languages"].items(),
                    key=lambda item: (-item[1]["corpus_lines"], item[0]),
                )
            ],
        ),
        "",
        "## Skipped input",
        "",
        markdown_table(
            ["reason", "count"], [[k, v] for k, v in report["corpus"]["skipped"].items()]
        )
        if report["corpus"]["skipped"]
        else "Nothing was skipped.",
        "",
        "## Alphabet",
        "",
        "Characters by rule: "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["alphabet"]["by_rule"].items()))
        + "; over the budget and left out: "
        + (
            ", ".join(f"{k} {v}" for k, v in sorted(report["alphabet"]["dropped"].items()))
            or "none"
        )
        + f". Exemplar sets fitted {len(report['alphabet']['exemplar_sources'])} languages ("
        + ", ".join(
            f"{source} {count}"
            for source, count in sorted(
                Counter(
                    s.split(":")[0] for s in report["alphabet"]["exemplar_sources"].values()
                ).items()
            )
        )
        + ").",
    ]
    return "\n".join(lines)


def compare_markdown(report: dict) -> str:
    """report_only.md: each vocabulary's spread, then one row per language (grouped by script,
    ordered by the first vocabulary) and one column group per vocabulary."""
    names = list(report["tokenizers"])
    # the first vocabulary orders the rows; a language only the others measured still has a row
    first = report["tokenizers"][names[0]]["languages"]
    scripts: dict[str, str] = {}  # from the text, so the same in every vocabulary
    for evaluation in report["tokenizers"].values():
        for lang, row in evaluation["languages"].items():
            scripts.setdefault(lang, row["script"])
    groups = group_by_script(_costliest(first) + sorted(set(scripts) - set(first)), scripts)
    headers = ["language", "script", "lines"]
    for name in names:
        headers += [f"{name} [UNK] %", f"{name} tokens/word", f"{name} parity"]
    rows = []
    for script, members in groups:
        for lang in members:
            rows_by = [report["tokenizers"][name]["languages"].get(lang) for name in names]
            row = [lang, script, next(r["lines"] for r in rows_by if r)]
            for r in rows_by:
                row += [_over(r and r["unk_rate"], UNK_TARGET), _num(r and r["fertility"]),
                        _num(r and r["parity"])]  # fmt: skip
            rows.append(row)
    parts = [f"# Vocabulary comparison on {', '.join(report['inputs'])}", ""]
    for name in names:
        evaluation = report["tokenizers"][name]
        parts += [
            f"## {name}",
            "",
            f"{evaluation['vocab_size']} tokens.",
            "",
            _spread_table(evaluation["summary"]),
            "",
            *problem_lines(evaluation),
            "",
        ]
    intro = _language_intro(groups, ranked_by=names[0] if len(names) > 1 else "")
    parts += ["## Per language", "", *intro, "", markdown_table(headers, rows)]
    return "\n".join(parts)


def write_build_report(out_dir: Path, report: dict) -> dict[str, Path]:
    return write_report(
        out_dir, "report", report, build_markdown(report), report_figure({"vocabulary": report})
    )


def write_compare_report(out_dir: Path, report: dict) -> dict[str, Path]:
    return write_report(
        out_dir,
        "report_only",
        report,
        compare_markdown(report),
        report_figure(report["tokenizers"]),
    )


def summary_lines(evaluation: dict) -> list[str]:
    """Three lines for stdout: [UNK], fertility and parity spread."""
    out = []
    for name, label, fmt, unit in (
        ("unk_rate", "[UNK] rate", _pct, "%"),
        ("fertility", "tokens per word", _num, ""),
        ("parity", "parity vs English", _num, ""),
    ):
        s = evaluation["summary"].get(name, {})
        if s.get("languages"):
            out.append(
                f"  {label}: median {fmt(s['median'])}{unit}, worst {fmt(s['worst'])}{unit} "
                f"({s['worst_language']}) over {s['languages']} languages"
            )
    return out
