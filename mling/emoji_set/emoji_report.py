"""What the emoji set holds and where it came from: `report.{json,md}` (counts per language and
script, that add up) and `README.md` (sources, versions, integrity and licenses), plus each
package's own license file under `licenses/`."""

from __future__ import annotations

import statistics
import tarfile
from collections import defaultdict
from pathlib import Path

from mling.common.atomic import write_atomic
from mling.common.report import markdown_table, write_report
from mling.emoji_set.sources import Package, role_of

MANY_NAMES = 200  # a language with this many names is one the vocabulary targets hold to


def summarize(per_language: dict[str, dict], scripts: dict[str, str]) -> dict:
    """Per-script totals and the headline counts, from {language: {"named", "pairs",
    "heldout_captions"}}; every total is the sum of its rows."""
    by_script: dict[str, dict] = defaultdict(lambda: {"languages": 0, "pairs": 0, "named": []})
    for language, counts in per_language.items():
        group = by_script[scripts[language]]
        group["languages"] += 1
        group["pairs"] += counts["pairs"]
        group["named"].append(counts["named"])
    per_script = {
        script: {
            "languages": g["languages"],
            "pairs": g["pairs"],
            "median_named": statistics.median(g["named"]),
        }
        for script, g in sorted(by_script.items())
    }
    return {
        "pairs": sum(c["pairs"] for c in per_language.values()),
        "heldout_captions": sum(c["heldout_captions"] for c in per_language.values()),
        "per_script": per_script,
        "languages_with_many_names": sorted(
            lang for lang, c in per_language.items() if c["named"] >= MANY_NAMES
        ),
    }


def _sources_rows(pins: dict[str, Package], registry: str) -> list[list]:
    return [
        [role_of(key), p.title, f"`{p.name}@{p.version}`", p.license, f"`{p.integrity}`",
         p.url(registry)]
        for key, p in pins.items()
    ]  # fmt: skip


def copy_licenses(paths: dict[str, Path], out_dir: Path) -> list[str]:
    """Each tarball's own license file(s), as `licenses/KEY-NAME`; returns the names written."""
    written = []
    for key, path in paths.items():
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = member.name.split("/", 1)[-1]
                if "/" not in name and name.upper().startswith("LICEN") and member.isfile():
                    target = f"licenses/{key}-{name}"
                    write_atomic(out_dir / target, tar.extractfile(member).read())
                    written.append(target)
    return sorted(written)


def write_readme(out_dir: Path, pins: dict[str, Package], summary: dict, licenses: list[str]):
    heldout = pins["heldout"]
    config = summary["config"]
    drawn = summary["drawings"]  # set name -> drawings used
    trained = [pins[key] for key in summary["training_sets"].values()]
    artists = ", ".join(f"{p.title} ({n})" for p, n in zip(trained, drawn.values(), strict=True))
    text = f"""# Emoji, named in {summary["languages"]} languages

Real drawings by outside artists, named by CLDR's translators: {summary["emoji"]} emoji in
{sum(drawn.values())} training drawings by {len(drawn)} artists ({artists}); {summary["heldout_images"]}
of them drawn by {heldout.title} held out for evaluation; named in {summary["languages"]}
languages. Built by `mling-emoji` (`data/emoji_set.py`, mling-align) with `--image-px
{config["image_px"]} --caption {config["caption"]} --emoji {config["emoji"]} --seed {config["seed"]} --order {config["order"]}`.

| folder | what |
|---|---|
| `pairs/part-*.parquet` | {summary["pairs"]} training pairs, one per (drawing, language naming its emoji), in a shuffled order: the pair schema (`key`, `caption`, `url`, `width`, `height`, `image` as PNG) plus `language` (CLDR locale), `image_id` (the emoji's code points: rows of one emoji share it, whoever drew it) and `emoji` |
| `heldout/captions.jsonl`, `heldout/images/` | the retrieval set: {summary["heldout_images"]} held-out drawings, each with its name in every language that names it (`eval/retrieval_set.py --captions heldout/captions.jsonl --images heldout/images`) |
| `report.md`, `report.json` | counts per language and script |
| `licenses/` | the license files the packages ship |

## Sources

{markdown_table(["role", "source", "npm package", "license", "integrity", "tarball"], _sources_rows(pins, summary["registry"]))}

## Licenses

- **Training images** (`pairs/`): PNG renderings of {", ".join(f"{p.title} ({p.homepage}), licensed {p.license}" for p in trained)}.
  A rendering is an adaptation: it carries its set's license, with attribution to its
  artists; a row's `url` names the package it was drawn from.
- **Held-out images** (`heldout/images/`): PNG renderings of {heldout.title}
  ({heldout.homepage}), licensed {heldout.license}.
- **Captions**: the Unicode CLDR emoji annotations ({pins["names"].homepage}), licensed
  {pins["names"].license}, Copyright © Unicode, Inc.
- Files: {", ".join(f"`{name}`" for name in licenses) or "none shipped"}.
"""
    write_atomic(out_dir / "README.md", text.encode("utf-8"))


def write_emoji_report(out_dir: Path, summary: dict) -> dict[str, Path]:
    """`report.json` and `report.md` into `out_dir`."""
    per_language = summary["per_language"]
    language_rows = [
        [lang, c["script"], c["named"], c["pairs"], c["heldout_captions"]]
        for lang, c in sorted(per_language.items(), key=lambda kv: (kv[1]["script"], kv[0]))
    ]
    script_rows = [
        [script, g["languages"], g["pairs"], g["median_named"]]
        for script, g in summary["per_script"].items()
    ]
    many = summary["languages_with_many_names"]
    markdown = "\n\n".join(
        [
            "# Emoji set",
            f"{summary['emoji']} emoji in {sum(summary['drawings'].values())} drawings by "
            f"{len(summary['drawings'])} artists "
            f"({', '.join(f'{k} {v}' for k, v in summary['drawings'].items())}), "
            f"{summary['languages']} languages in "
            f"{len(summary['per_script'])} scripts, {summary['pairs']} training pairs; "
            f"{summary['heldout_images']} held-out images with {summary['heldout_captions']} "
            f"captions. {len(many)} languages name {MANY_NAMES} or more emoji. "
            f"{summary['seconds']} s.",
            "## Per script",
            markdown_table(["script", "languages", "pairs", "median emoji named"], script_rows),
            "## Per language",
            markdown_table(
                ["language", "script", "emoji named", "pairs", "held-out captions"], language_rows
            ),
        ]
    )
    return write_report(out_dir, "report", summary, markdown)
