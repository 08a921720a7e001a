"""Does the length filter treat scripts without spaces like English? Retention per language.

    python -m benchmarks.filter_fairness

30 Wikipedia-style captions in en/ja/zh/th (tests/helpers/fairness.py), kept by the 3-20 unigram
filter when words are counted by ICU segmentation, against splitting on spaces.
"""

from __future__ import annotations

import argparse

from mling.common.report import markdown_table
from tests.helpers.fairness import retention_table


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    rows = [
        (language, f"{100 * r['icu']:.0f}%", f"{100 * r['spaces']:.0f}%", f"{r['icu_vs_en']:.2f}x")
        for language, r in retention_table().items()
    ]
    print(markdown_table(["language", "kept (ICU words)", "kept (spaces)", "ICU vs en"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
