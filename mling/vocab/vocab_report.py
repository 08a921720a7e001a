"""The per-language report: `report.json` (stable keys), `report.md`, `report.png`, and the
summary printed on stdout. Written with the toolkit's shared report writer."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from tokenizers import Tokenizer

from mling.common.report import markdown_table, new_figure, write_report
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
CHART_LANGUAGES = 40  # languages drawn in the chart (the worst by fertility)


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


def _language_table(languages: Mapping[str, dict]) -> str:
    has_train = any("train_lines" in row for row in languages.values())
    headers = ["language", "script"] + (["train lines"] if has_train else [])
    headers += ["held-out lines", "[UNK] %", "[UNK] chars %", "tokens/word", "parity"]
    order = sorted(languages, key=lambda lang: (-languages[lang].get("train_lines", 0), lang))
    rows = []
    for lang in order:
        row = languages[lang]
        rows.append(
            [lang, row["script"]]
            + ([row.get("train_lines", 0)] if has_train else [])
            + [
                row["lines"],
                _pct(row["unk_rate"]),
                _pct(row["unk_char_rate"]),
                _num(row["fertility"]),
                _num(row["parity"]),
            ]
        )
    return markdown_table(headers, rows)


def _script_table(scripts: Mapping[str, dict], limit: int = 25) -> str:
    rows = [
        [name, value["tokens"], _pct(value["share"])]
        for name, value in list(scripts.items())[:limit]
    ]
    return markdown_table(["script", "tokens", "share %"], rows)


def _figure(evaluations: Mapping[str, dict]):
    """Tokens per word for the worst languages (one bar per vocabulary), and script shares."""
    figure, _ = new_figure(10, 7.5)
    figure.clf()  # the shared helper gives one axes; this chart has two
    top, bottom = figure.subplots(2, 1)
    first = next(iter(evaluations.values()))
    fertility = {lang: row["fertility"] or 0.0 for lang, row in first["languages"].items()}
    shown = sorted(fertility, key=lambda lang: (-fertility[lang], lang))[:CHART_LANGUAGES]
    width = 0.8 / max(1, len(evaluations))
    for index, (name, evaluation) in enumerate(evaluations.items()):
        values = [evaluation["languages"].get(lang, {}).get("fertility") or 0.0 for lang in shown]
        positions = [i + index * width for i in range(len(shown))]
        top.bar(positions, values, width=width, label=name)
    top.set_xticks([i + 0.4 - width / 2 for i in range(len(shown))], shown, rotation=90)
    top.set_ylabel("tokens per word (held out)")
    top.set_title(f"fertility, {len(shown)} highest of {len(fertility)} languages")
    if len(evaluations) > 1:
        top.legend()
    scripts = list(first["scripts"].items())[:15]
    bottom.barh([name for name, _ in scripts][::-1], [100 * v["share"] for _, v in scripts][::-1])
    bottom.set_xlabel("share of the vocabulary, %")
    bottom.set_title("vocabulary tokens per script")
    figure.tight_layout()
    return figure


def build_markdown(report: dict) -> str:
    """report.md for a build: summary, per-language table, scripts, sample and alphabet."""
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
        "## Per language",
        "",
        _language_table(report["languages"]),
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
                for lang, row in report["sample"]["languages"].items()
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
    """report_only.md: one row per language, one column group per vocabulary."""
    names = list(report["tokenizers"])
    languages = sorted({lang for t in report["tokenizers"].values() for lang in t["languages"]})
    headers = ["language", "lines"]
    for name in names:
        headers += [f"{name} [UNK] %", f"{name} tokens/word", f"{name} parity"]
    rows = []
    for lang in languages:
        rows_by = [report["tokenizers"][name]["languages"].get(lang) for name in names]
        row = [lang, next(r["lines"] for r in rows_by if r)]
        for r in rows_by:
            row += [_pct(r and r["unk_rate"]), _num(r and r["fertility"]), _num(r and r["parity"])]
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
        ]
    parts += ["## Per language", "", markdown_table(headers, rows)]
    return "\n".join(parts)


def write_build_report(out_dir: Path, report: dict) -> dict[str, Path]:
    return write_report(
        out_dir, "report", report, build_markdown(report), _figure({"vocabulary": report})
    )


def write_compare_report(out_dir: Path, report: dict) -> dict[str, Path]:
    return write_report(
        out_dir, "report_only", report, compare_markdown(report), _figure(report["tokenizers"])
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
