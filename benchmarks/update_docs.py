"""Copy the newest benchmark reports into the docs, so no table there outlives the code.

    python -m benchmarks.update_docs          # after `make bench` (which runs it last)
    python -m benchmarks.update_docs --check  # which blocks the code has moved past

In `README.md` and any `docs/*.md`, a block

    <!-- generated from bench-output/vocab/bench.md by `make bench`; do not edit -->
    ...
    <!-- end generated -->

is replaced by that report's Markdown (its title line dropped) and the date the report was
written. A report that is missing leaves its block as it is and is named on stderr, so a
partial run updates what it measured and nothing else.

A block generated from a module of the package instead (`FROM_CODE`, such as docs/filter.md's
reasons table, `<!-- generated from mling.filtering.reasons by ...`) is replaced by what its
function returns; a test checks that such blocks are up to date, so `--check` skips them.

`--check` writes nothing: it lists, one line each, the blocks whose measured modules changed
after the commit their report recorded (`mling/common/provenance.py`: the report's JSON holds
the commit, whether the tree was dirty and the modules measured), and those whose report
records no commit or is missing; it exits 0 either way. A block's report is the JSON beside its
source (`bench.md` -> `bench.json`), or when that records no commit, the `report.json` of the
nearest folder above it (a demo's summary and its evaluation belong to the demo's run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mling.common.provenance import changes_since
from mling.filtering.reasons import reasons_table

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"(?P<open><!-- generated from (?P<source>\S+) by `(?P<command>[^`]+)`; do not edit -->\n)"
    r".*?(?P<close><!-- end generated -->)",
    re.S,
)


# Blocks made from the code, not from a report: source named in the marker -> its Markdown.
FROM_CODE: dict[str, Callable[[], str]] = {"mling.filtering.reasons": reasons_table}

IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<path>[^):]+\.png)\)")


def render(source: Path, command: str, page: Path) -> str:
    """A report's Markdown without its `# title` line, and where and when it came from. A PNG
    the report shows beside itself is copied into docs/generated/ (outputs are not in the
    repository) and the link rewritten for `page`."""
    lines = source.read_text(encoding="utf-8").strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    written = time.strftime("%Y-%m-%d", time.localtime(source.stat().st_mtime))
    body = IMAGE.sub(lambda m: _copied_image(m, source, page), "\n".join(lines).strip())
    return f"{body}\n\n*From `{command}`, run on {written}.*\n"


def _copied_image(match: re.Match, source: Path, page: Path) -> str:
    image = (source.parent / match["path"]).resolve()
    if not image.is_file():
        return match.group(0)
    name = "-".join(image.relative_to(ROOT).parts)  # demo-emoji-output-eval-report.png
    target = ROOT / "docs" / "generated" / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(image.read_bytes())
    link = os.path.relpath(target, page.parent)
    return f"![{match['alt']}]({link})"


def update(text: str, missing: list[str], page: Path = ROOT / "docs" / "page.md") -> str:
    def replace(match: re.Match) -> str:
        if match["source"] in FROM_CODE:
            return match["open"] + FROM_CODE[match["source"]]() + "\n" + match["close"]
        source = ROOT / match["source"]
        if not source.is_file():
            missing.append(match["source"])
            return match.group(0)
        return match["open"] + render(source, match["command"], page) + match["close"]

    return BLOCK.sub(replace, text)


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


HEADING = re.compile(r"^#+ +(.+)$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def heading_before(text: str, at: int) -> str:
    """The page's own heading over position `at`: not one inside a generated block or code."""
    headings = HEADING.findall(FENCE.sub("", BLOCK.sub("", text[:at])))
    return headings[-1] if headings else "(top)"


def block_report(source: Path, root: Path = ROOT) -> tuple[Path | None, object]:
    """(the report JSON that records a block's run, its "provenance"), or (None, None) when no
    report is there: the JSON beside the source, else report.json in the nearest folder above
    it that records one (never above `root`). Provenance is one state or a list of them (an
    ablation's rows, each measured at its own commit)."""
    candidates = [source.with_suffix(".json")]
    for folder in source.parents:
        if folder == root or root not in folder.parents:
            break
        candidates.append(folder / "report.json")
    found = [path for path in candidates if path.is_file()]
    for path in found:
        try:
            provenance = json.loads(path.read_text(encoding="utf-8")).get("provenance")
        except (ValueError, AttributeError):
            continue
        if provenance:
            return path, provenance
    return (found[0], None) if found else (None, None)


def staleness(provenance: object, root: Path = ROOT) -> str | None:
    """What changed since the report's run (one state, or a list of labelled ones), or None."""
    if not provenance:
        return "no commit recorded"
    states = provenance if isinstance(provenance, list) else [provenance]
    found = []
    for state in states:
        change = changes_since(state, root)
        if change:
            label = state.get("label")
            found.append(f"{label}: {change}" if label and len(states) > 1 else change)
    return " | ".join(found) or None


def stale_blocks(root: Path = ROOT) -> tuple[list[str], int]:
    """One line per stale block ("PAGE § HEADING (REPORT): what changed"), and how many
    blocks there are in all."""
    lines, blocks = [], 0
    for page in pages(root):
        if not page.is_file():
            continue
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            if match["source"] in FROM_CODE:
                continue  # made from the code itself; tests/test_filter_records.py checks it
            blocks += 1
            where = f"{page.relative_to(root)} § {heading_before(text, match.start())}"
            report, provenance = block_report(root / match["source"], root)
            if report is None:
                lines.append(
                    f"{where} ({match['source']}): no report, so no commit; run `{match['command']}`"
                )
                continue
            change = staleness(provenance, root)
            if change:
                lines.append(f"{where} ({report.relative_to(root)}): {change}")
    return lines, blocks


def check(root: Path = ROOT) -> int:
    lines, blocks = stale_blocks(root)
    if not lines:
        print(f"update_docs.py --check: all {blocks} generated blocks measured the code as it is")
        return 0
    print(f"update_docs.py --check: {len(lines)} of {blocks} generated blocks are stale:")
    for line in lines:
        print(f"  {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list the blocks whose measured modules changed since their report",
    )
    if parser.parse_args(argv).check:
        return check()
    missing: list[str] = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        updated = update(text, missing, page)
        if updated != text:
            page.write_text(updated, encoding="utf-8")
            print(f"update_docs.py: {page.relative_to(ROOT)} updated")
    for source in missing:
        print(f"update_docs.py: {source} not found; its block is unchanged", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
