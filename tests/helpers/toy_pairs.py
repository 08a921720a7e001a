"""A separable toy corpus for smoke tests and the training benchmark: no download, seconds to make.

Each image is a background colour with a centred square of another colour; its caption names
both colours ("red and blue", "rot und blau", "赤と青", ...) in one of ten languages and
scripts. 6 x 5 = 30 classes, so a tiny model can learn it in a few hundred CPU steps.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from mling.pairs.schema import PAIR_SCHEMA
from mling.pairs.shards import write_pair_shards

RGB = [(215, 40, 40), (40, 170, 60), (40, 70, 215), (235, 210, 40), (245, 245, 245), (20, 20, 20)]
COLOURS = {  # red, green, blue, yellow, white, black
    "en": ["red", "green", "blue", "yellow", "white", "black"],
    "de": ["rot", "grün", "blau", "gelb", "weiß", "schwarz"],
    "fr": ["rouge", "vert", "bleu", "jaune", "blanc", "noir"],
    "ru": ["красный", "зелёный", "синий", "жёлтый", "белый", "чёрный"],
    "el": ["κόκκινο", "πράσινο", "μπλε", "κίτρινο", "λευκό", "μαύρο"],
    "ar": ["أحمر", "أخضر", "أزرق", "أصفر", "أبيض", "أسود"],
    "hi": ["लाल", "हरा", "नीला", "पीला", "सफ़ेद", "काला"],
    "th": ["แดง", "เขียว", "น้ำเงิน", "เหลือง", "ขาว", "ดำ"],
    "ja": ["赤", "緑", "青", "黄色", "白", "黒"],
    "zh": ["红", "绿", "蓝", "黄", "白", "黑"],
}
TEMPLATES = {
    "en": "{a} and {b}",
    "de": "{a} und {b}",
    "fr": "{a} et {b}",
    "ru": "{a} и {b}",
    "el": "{a} και {b}",
    "ar": "{a} و{b}",
    "hi": "{a} और {b}",
    "th": "{a}และ{b}",
    "ja": "{a}と{b}",
    "zh": "{a}和{b}",
}
LANGUAGES = tuple(COLOURS)


def toy_caption(language: str, background: int, square: int) -> str:
    words = COLOURS[language]
    return TEMPLATES[language].format(a=words[background], b=words[square])


def toy_captions() -> list[str]:
    """Every caption the corpus can contain (for training a toy vocabulary)."""
    return [
        toy_caption(lang, a, b) for lang in LANGUAGES for a in range(6) for b in range(6) if a != b
    ]


def toy_image(background: int, square: int, side: int, rng: np.random.Generator) -> bytes:
    """JPEG bytes: side x side px, the square covers the middle half, with pixel noise."""
    pixels = np.empty((side, side, 3), dtype=np.float32)
    pixels[:] = RGB[background]
    quarter = side // 4
    pixels[quarter : side - quarter, quarter : side - quarter] = RGB[square]
    pixels += rng.normal(0, 12, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def toy_table(rows: int, side: int = 32, seed: int = 0, corrupt: int = 0) -> pa.Table:
    """`rows` pairs in the pair schema; the first `corrupt` rows get truncated image bytes."""
    rng = np.random.default_rng(seed)
    records = {name: [] for name in PAIR_SCHEMA.names}
    for i in range(rows):
        background, square = rng.choice(6, size=2, replace=False)
        language = LANGUAGES[rng.integers(len(LANGUAGES))]
        image = toy_image(int(background), int(square), side, rng)
        records["key"].append(f"{i:08d}")
        records["caption"].append(toy_caption(language, int(background), int(square)))
        records["url"].append(None)
        records["width"].append(side)
        records["height"].append(side)
        records["image"].append(image[: len(image) // 3] if i < corrupt else image)
    return pa.table(records, schema=PAIR_SCHEMA)


def write_toy_shards(
    out_dir: str | Path,
    rows: int,
    side: int = 32,
    seed: int = 0,
    shard_rows: int = 50_000,
    corrupt: int = 0,
) -> list[Path]:
    """Write the toy corpus as parquet pair shards; returns their paths."""
    table = toy_table(rows, side, seed, corrupt)
    return write_pair_shards(table.to_batches(), out_dir, shard_rows=shard_rows)


def build_toy_tokenizer(out_dir: str | Path, vocab_size: int = 400) -> Path:
    """A BertTokenizerFast (WordPiece, cased, 64 tokens) trained in-process on toy_captions()."""
    from tests.helpers.tiny_model import build_tiny_tokenizer

    return build_tiny_tokenizer(out_dir, toy_captions() * 2, vocab_size=vocab_size)
