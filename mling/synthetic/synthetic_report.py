"""The generator's report: rows per noise kind and per language, sample pairs, and a contact
sheet (PNG) with one image of each kind, written with `mling.common.report.write_report`."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from mling.common.report import markdown_table, new_figure, write_report
from mling.synthetic.noise import KINDS

CAUGHT_BY = {
    "clean": "kept",
    "too_small": "image shorter side",
    "extreme_aspect": "image aspect ratio",
    "boilerplate": "alt-text shared by many images",
    "garbage": "rare unigrams/bigrams",
    "too_short": "fewer than 3 unigrams",
    "too_long": "more than 20 unigrams",
    "reused_image": "image with too many alt-texts",
    "near_duplicate": "near-duplicate of a test image",
    "mismatched": "nothing (no filter can see it)",
}


def _samples(pairs_dir: Path) -> dict[str, dict]:
    """The first row of each noise kind in the first shard."""
    first = sorted(pairs_dir.glob("part-*.parquet"))[0]
    table = pq.read_table(first, columns=["key", "caption", "image", "synthetic_noise",
                                          "synthetic_language", "width", "height"])  # fmt: skip
    found: dict[str, dict] = {}
    for row in table.to_pylist():
        found.setdefault(row["synthetic_noise"], row)
        if len(found) == len(KINDS) + 1:
            break
    return found


def write_synthetic_report(out_dir: Path, summary: dict) -> dict[str, Path]:
    """`report.json`, `report.md` and `report.png` (contact sheet) into `out_dir`."""
    pairs = summary["pairs"]
    samples = _samples(out_dir / "pairs")
    noise_rows = [
        [kind, count, 100.0 * count / pairs, CAUGHT_BY[kind],
         (samples.get(kind) or {}).get("caption", "")[:60]]
        for kind, count in summary["noise"].items()
    ]  # fmt: skip
    language_rows = [
        [language, count, 100.0 * count / pairs] for language, count in summary["languages"].items()
    ]
    markdown = "\n\n".join(
        [
            "# Synthetic corpus",
            f"{pairs} pairs with {summary['scene']['image_px']} px images, seed "
            f"{summary['config']['seed']}; {summary['test_images']} test images in the "
            f"Multi30k layout under `multi30k/` with images in `images/`; "
            f"{summary['reused_images']} placeholder image(s) reused with more than "
            f"{summary['config']['reuse_threshold']} alt-texts; {summary['seconds']} s.",
            "## Noise kinds",
            markdown_table(["kind", "rows", "% of pairs", "caught by", "example"], noise_rows),
            "## Languages",
            "`und`: boilerplate alt-texts, which belong to no language.",
            markdown_table(["language", "rows", "% of pairs"], language_rows),
        ]
    )
    return write_report(out_dir, "report", summary, markdown, _contact_sheet(samples))


def _contact_sheet(samples: dict[str, dict]):
    """One image per noise kind, titled with its kind and original size."""
    kinds = [kind for kind in ("clean", *KINDS) if kind in samples]
    figure, axes = new_figure(2.0 * len(kinds), 2.6)
    figure.clf()
    for slot, kind in enumerate(kinds, start=1):
        row = samples[kind]
        axis = figure.add_subplot(1, len(kinds), slot)
        axis.imshow(Image.open(io.BytesIO(row["image"])).convert("RGB"))
        axis.set_title(f"{kind}\n{row['width']}x{row['height']}", fontsize=8)
        axis.axis("off")
    return figure
