"""Copy the newest benchmark reports into the docs, so no table there outlives the code.

    python -m benchmarks.update_docs          # after `make bench` (which runs it last)

In `README.md` and any `docs/*.md`, a block

    <!-- generated from bench-output/vocab/bench.md by `make bench`; do not edit -->
    ...
    <!-- end generated -->

is replaced by that report's Markdown (its title line dropped) and the date the report was
written. A report that is missing leaves its block as it is and is named on stderr, so a
partial run updates what it measured and nothing else.

A block generated from a module of the package instead (`FROM_CODE`, such as docs/filter.md's
reasons table, `<!-- generated from mling.filtering.reasons by ...`) is replaced by what its
function returns; a test checks that such blocks are up to date.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    missing: list[str] = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
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
