"""Reports: stable JSON without NaN, Markdown tables, PNG charts, written whole."""

from __future__ import annotations

import json

from mling.common.report import markdown_table, new_figure, write_report


def test_write_report_writes_three_files(tmp_path):
    figure, axes = new_figure()
    axes.bar(["en", "ja"], [1.0, 2.0])
    paths = write_report(tmp_path, "report", {"b": float("nan"), "a": "日本語"}, "# Hi", figure)
    assert sorted(paths) == ["json", "md", "png"]
    text = paths["json"].read_text(encoding="utf-8")
    assert json.loads(text) == {"a": "日本語", "b": None}
    assert text.index('"a"') < text.index('"b"')  # sorted keys: diffs between runs stay small
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_markdown_table():
    table = markdown_table(["model", "en", "ar"], [["mling", 90.24, None], ["a|b", 1, 2.0]])
    assert table.splitlines() == [
        "| model | en | ar |",
        "|---|---|---|",
        "| mling | 90.2 | — |",
        "| a\\|b | 1 | 2.0 |",
    ]
