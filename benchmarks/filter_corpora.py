"""The filter benchmark's two corpora, as parquet shards in the pair schema (no image bytes).

`synthetic`: made-up words in 11 languages, Zipf-distributed, with the web's repeats built in
(shared alt-texts, one image with many alt-texts, duplicate keys); most rows are dropped.

`real_text`: real sentences, as web alt-text mixes them: caption-length windows of the UDHR
texts that `gflanguages` ships (hundreds of languages and scripts, no download), Multi30k's
captions (en/de/fr/cs) when `../shared` is beside the clone, 5% boilerplate alt-texts ("logo",
"IMG_2041.jpg") shared by many images, random image sizes; about two rows in three are kept.
Both are seeded: the same rows on every machine with the same packages.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]  # the repository
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k" / "data" / "task1" / "raw"

# Letters per language; no-space scripts are written without spaces, as in real alt-text.
ALPHABETS = {
    "en": ("abcdefghijklmnopqrstuvwxyz", " "),
    "de": ("abcdefghijklmnopqrstuvwxyzäöüß", " "),
    "fr": ("abcdefghijklmnopqrstuvwxyzéèàç", " "),
    "ru": ("абвгдежзийклмнопрстуфхцчшщыэюя", " "),
    "el": ("αβγδεζηθικλμνξοπρστυφχψω", " "),
    "ar": ("ابتثجحخدذرزسشصضطظعغفقكلمنهوي", " "),
    "hi": ("कखगघचछजझटठडढणतथदधनपफबभमयरलवशसह", " "),
    "ko": ("가나다라마바사아자차카타파하고노도로모보소오조", " "),
    "ja": ("あいうえおかきくけこさしすせそたちつてとなにぬねの日本語写真東京山川", ""),
    "zh": ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动", ""),
    "th": ("กขคงจฉชซญดตถทธนบปผพฟภมยรลวศษสหอฮะาิีึืุู", ""),
}


# Shares of rows, roughly a multilingual web crawl's: English first, 10% in no-space scripts.
SHARES = {
    "en": 0.40,
    "de": 0.08,
    "fr": 0.08,
    "ru": 0.08,
    "el": 0.04,
    "ar": 0.06,
    "hi": 0.06,
    "ko": 0.10,
    "ja": 0.04,
    "zh": 0.04,
    "th": 0.02,
}


def synthetic_pairs(rows: int, seed: int = 0) -> pa.Table:
    """`rows` pair-schema rows without image bytes: 11 languages, Zipf-distributed words
    (2-8 letters, 1-3 characters in Chinese and Japanese), about 9 words a caption (geometric,
    1-30), sizes 64-1600 px, one image with many alt-texts, 2% shared alt-texts, 0.01%
    duplicate keys."""
    rng = np.random.default_rng(seed)
    vocab = {}
    for language, (letters, _) in ALPHABETS.items():
        chars = np.array(list(letters))
        low, high = (1, 4) if language in ("ja", "zh") else (2, 9)
        vocab[language] = [
            "".join(rng.choice(chars, size=n)) for n in rng.integers(low, high, size=5000)
        ]
    languages = list(ALPHABETS)
    row_language = rng.choice(len(languages), size=rows, p=[SHARES[name] for name in languages])
    word_counts = np.clip(rng.geometric(1 / 9, size=rows), 1, 30)
    ranks = np.minimum(rng.zipf(1.3, size=int(word_counts.sum())) - 1, 4999)
    captions, start = [], 0
    for language, count in zip(row_language, word_counts, strict=True):
        name = languages[language]
        words = vocab[name]
        captions.append(ALPHABETS[name][1].join(words[r] for r in ranks[start : start + count]))
        start += count
    shared = rng.random(rows) < 0.02
    for i in np.flatnonzero(shared):
        captions[i] = f"stock photo {i % 40}"
    image_ids = rng.integers(0, rows, size=rows)
    image_ids[rng.random(rows) < 0.002] = 7  # one image with ~0.2% of all alt-texts
    keys = [f"{i:09d}" for i in range(rows)]
    for i in rng.choice(rows, size=max(rows // 10_000, 1), replace=False):
        keys[i] = keys[0]  # duplicate keys
    return pa.table(
        {
            "key": keys,
            "caption": captions,
            "url": [f"https://img.example/{i}.jpg" for i in image_ids],
            "width": rng.integers(64, 1600, size=rows),
            "height": rng.integers(64, 1600, size=rows),
            "image": pa.nulls(rows, pa.binary()),
        }
    )


def write_shards(out_dir: Path, rows: int, make, shard_rows: int = 1_000_000) -> list[Path]:
    """Parquet shards of `make(rows, seed)` tables (seed = shard index, keys made unique
    across shards), reused when already there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, start in enumerate(range(0, rows, shard_rows)):
        path = out_dir / f"part-{index:05d}.parquet"
        if not path.exists():
            table = make(min(shard_rows, rows - start), seed=index)
            keys = [f"{index}-{k}" for k in table.column("key").to_pylist()]
            table = table.set_column(0, "key", pa.array(keys))
            pq.write_table(table, path.with_suffix(".partial"))
            path.with_suffix(".partial").rename(path)
        paths.append(path)
    return paths


# Alt-texts that say nothing, shared by many images on the web; the filters drop them as
# shared (more than max_images images) or as too short.
BOILERPLATE = (
    "image", "photo", "logo", "thumbnail", "banner", "click here", "product image",
    "stock photo", "no image available", "placeholder", "profile picture", "icon",
    "header image", "featured image", "default", "untitled", "loading", "advertisement",
)  # fmt: skip


def multi30k_captions() -> dict[str, list[str]]:
    """Multi30k's training captions per language (en, de, fr, cs), or {} without ../shared."""
    if not MULTI30K.is_dir():
        return {}
    out = {}
    for code in ("en", "de", "fr", "cs"):
        with gzip.open(MULTI30K / f"train.{code}.gz", "rt", encoding="utf-8") as file:
            out[code] = [line.strip() for line in file if line.strip()]
    return out


def lid_languages() -> list[str]:
    """The UDHR texts (gflanguages ids) that lid.176 labels with their own language, read
    whole: 112 of the 755. Text the model knows, so its work on them is the web's."""
    from mling.common.language_id import LanguageIdentifier
    from tests.helpers.udhr_corpus import udhr_lines

    texts = udhr_lines()
    names = sorted(texts)
    labels, _ = LanguageIdentifier(max_chars=1 << 30).predict([" ".join(texts[n]) for n in names])
    return [name for name, label in zip(names, labels, strict=True) if name.split("_")[0] == label]


def real_text_pairs(rows: int, seed: int = 0) -> pa.Table:
    """`rows` pair-schema rows of real text: 30% English-heavy captions (Multi30k's when
    ../shared is there, else UDHR windows in en/de/fr/cs), 65% UDHR windows of 1-24 words in
    a language drawn uniformly from the 112 that lid.176 knows (`lid_languages`), 5% boilerplate; image sizes 100-1600
    px on each side, chosen independently (some too small, some too elongated)."""
    from tests.helpers.udhr_corpus import segments, udhr_lines

    rng = random.Random(seed)
    texts = udhr_lines()
    languages = lid_languages()
    parts = {}

    def window(language: str) -> str:
        if language not in parts:
            pieces = segments(" ".join(texts[language]))
            parts[language] = (pieces, [i for i, p in enumerate(pieces) if p.strip()])
        pieces, words = parts[language]
        first = rng.randrange(len(words))
        last = min(len(words) - 1, first + rng.randint(1, 24) - 1)
        return "".join(pieces[words[first] : words[last] + 1]).strip()

    captions_m30k = multi30k_captions()
    english_like = ["en_Latn"] * 6 + ["de_Latn", "fr_Latn", "cs_Latn"] * 1
    m30k_codes = ["en"] * 6 + ["de", "fr", "cs"]
    captions = []
    for _ in range(rows):
        draw = rng.random()
        if draw < 0.05:
            captions.append(rng.choice(BOILERPLATE))
        elif draw < 0.35 and captions_m30k:
            captions.append(rng.choice(captions_m30k[rng.choice(m30k_codes)]))
        elif draw < 0.35:
            captions.append(window(rng.choice(english_like)))
        else:
            captions.append(window(rng.choice(languages)))
    generator = np.random.default_rng(seed)
    image_ids = generator.integers(0, rows, size=rows)
    return pa.table(
        {
            "key": [f"{i:09d}" for i in range(rows)],
            "caption": captions,
            "url": [f"https://img.example/{i}.jpg" for i in image_ids],
            "width": generator.integers(100, 1600, size=rows),
            "height": generator.integers(100, 1600, size=rows),
            "image": pa.nulls(rows, pa.binary()),
        }
    )


CORPORA = {"synthetic": synthetic_pairs, "real_text": real_text_pairs}
