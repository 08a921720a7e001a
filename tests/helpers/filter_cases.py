"""The filter's reason fixture: one row per reason in every script, written as parquet with
odd column types, run through the filter, and read back as key -> reasons.

Shared by the filter's tests (pipeline, engines, fast paths).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mling.filtering.pipeline import main

# Good captions, one per script: each kept when nothing else is wrong with its row.
GOOD = {
    "en": "A brown dog runs across the green grass.",
    "de": "Ein brauner Hund läuft über das grüne Gras.",
    "ru": "Коричневая собака бежит по зелёной траве.",
    "el": "Ένας καφέ σκύλος τρέχει στο πράσινο γρασίδι.",
    "ar": "كلب بني يركض على العشب الأخضر.",
    "he": "כלב חום רץ על הדשא הירוק.",
    "hi": "एक भूरा कुत्ता हरी घास पर दौड़ रहा है।",
    "th": "สุนัขสีน้ำตาลวิ่งบนหญ้าสีเขียว",
    "ja": "茶色の犬が緑の芝生の上を走っている。",
    "zh": "一只棕色的狗在绿色的草地上奔跑。",
    "ko": "갈색 개가 푸른 잔디 위를 달린다.",
    "vi": "Một con chó nâu chạy trên bãi cỏ xanh.",
}
# Options for the fixture: small frequency thresholds so a handful of rows can cross them.
OPTIONS = ["--max-alt-texts", "3", "--max-images", "2", "--quiet"]
EVAL_URL = "https://eval.example/test-image.jpg"


def pair_row(key, caption, url=None, width=300, height=400):
    return {"key": key, "caption": caption, "url": url, "width": width, "height": height}


def reason_rows() -> list[tuple[dict, str | None]]:
    """(row, expected reason) for the main parquet file; None means kept."""
    rows = [
        (pair_row(f"kept-{lang}", text, f"https://img.example/{lang}.jpg"), None)
        for lang, text in GOOD.items()
    ]
    rows += [
        (pair_row(None, "A key that is missing entirely."), "missing_key"),
        (pair_row("", "A key that is an empty string."), "missing_key"),
        (pair_row("kept-en", "The second row with an existing key."), "duplicate_key"),
        (pair_row("no-caption", None), "missing_caption"),
        (pair_row("blank-caption", " \t "), "missing_caption"),
        (pair_row("nul-caption", "A dog\x00 runs across the park."), "caption_control_characters"),
        (pair_row("width-missing", "A picture without a known width.", width=None), "missing_size"),
        (pair_row("width-zero", "A picture that has zero width.", width=0), "size_not_positive"),
        (
            pair_row("small", "A small picture of a cat.", "https://img.example/s.jpg", 200, 400),
            "image_too_small",
        ),
        (
            pair_row(
                "small-ok", "A barely large picture here.", "https://img.example/s2.jpg", 201, 400
            ),
            None,
        ),
        (
            pair_row(
                "wide", "A very wide panorama picture.", "https://img.example/w.jpg", 900, 300
            ),
            "aspect_ratio",
        ),
        (
            pair_row(
                "wide-ok", "An almost too wide picture.", "https://img.example/w2.jpg", 899, 300
            ),
            None,
        ),
        (pair_row("eval", "A photo from the test set.", EVAL_URL), "near_duplicate_eval"),
        (pair_row("few", "Zwei Hunde", "https://img.example/f.jpg"), "too_few_words"),
        (pair_row("few-ja", "犬", "https://img.example/fj.jpg"), "too_few_words"),
        (pair_row("many", " ".join(["word"] * 21), "https://img.example/m.jpg"), "too_many_words"),
    ]
    # One image with 4 alt-texts (more than 3), one alt-text on 3 images (more than 2).
    rows += [
        (
            pair_row(f"logo-{i}", f"Company logo number {i} here", "https://img.example/logo.png"),
            "image_many_alt_texts",
        )
        for i in range(4)
    ]
    rows += [
        (pair_row(f"stock-{i}", text, f"https://img.example/stock{i}.jpg"), "alt_text_shared")
        for i, text in enumerate(
            ["Stock photo of a beach", "stock  photo of a BEACH", "Stock photo of a beach "]
        )
    ]
    return rows


def write_reason_fixture(directory: Path) -> dict[str, list[str | None]]:
    """Three parquet files of differing column types; returns key -> expected reasons."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = reason_rows()
    pq.write_table(pa.Table.from_pylist([r for r, _ in rows]), directory / "part-0.parquet")
    # Sizes stored as text, captions stored as bytes.
    odd = pa.table(
        {
            "key": ["text-size", "bad-size", "bad-utf8", "bytes-ok"],
            "caption": [
                b"A size written as text.",
                b"A size that is not a number.",
                b"caf\xe9 au lait here",
                "Ein Hund läuft im Park.".encode(),
            ],
            "url": ["https://img.example/t.jpg", None, None, "https://img.example/b.jpg"],
            "width": ["640", "big", "640", "640"],
            "height": ["480", "480", "480", "480"],
            "similarity": [0.3, 0.2, 0.1, 0.4],  # an extra column, passed through
        }
    )
    pq.write_table(odd, directory / "part-1.parquet")
    numbers = pa.table(
        {
            "key": ["numeric-caption"],
            "caption": [12345],
            "url": [None],
            "width": [300],
            "height": [300],
        }
    )
    pq.write_table(numbers, directory / "part-2.parquet")
    expected: dict[str, list[str | None]] = {}
    for row, reason in rows:
        expected.setdefault(row["key"], []).append(reason)
    for key, reason in [
        ("text-size", None),
        ("bad-size", "size_not_numeric"),
        ("bad-utf8", "invalid_utf8"),
        ("bytes-ok", None),
        ("numeric-caption", "caption_not_text"),
    ]:
        expected[key] = [reason]
    (directory.parent / "eval-hashes.txt").write_text(f"# test set\n{EVAL_URL}\n")
    return expected


def outcomes(out_dir: Path) -> dict[str, list[str | None]]:
    """key -> reasons (None: kept) from the kept shards and the rejected shards."""
    found: dict[str, list[str | None]] = {}
    kept = pq.read_table(sorted(out_dir.glob("part-*.parquet")))
    for key in kept.column("key").to_pylist():
        found.setdefault(key, []).append(None)
    rejected = pq.read_table(sorted((out_dir / "rejected").glob("part-*.parquet")))
    for key, reason in zip(
        rejected.column("key").to_pylist(), rejected.column("reason").to_pylist(), strict=True
    ):
        found.setdefault(key, []).append(reason)
    return {key: sorted(v, key=str) for key, v in found.items()}


def run(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    argv = ["--input", str(tmp_path / "in"), "--output", str(out), "--write-rejected"]
    argv += ["--eval-hashes", str(tmp_path / "eval-hashes.txt"), *OPTIONS, *extra]
    assert main(argv) == 0
    return out
