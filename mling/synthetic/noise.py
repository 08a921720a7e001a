"""The noise in web alt-text, at documented rates: the kinds ALIGN's filters target, plus the
one they cannot see (a caption taken from another image).

Each pair of the synthetic corpus is either `clean` or has exactly one noise kind; the counts
per kind are exact (rate x pairs, rounded), so a report can say how much of each kind the
filter caught. The kinds, and the filter meant to catch each:

| kind             | what the pair looks like                                | caught by               |
|------------------|---------------------------------------------------------|-------------------------|
| too_small        | true caption; original size under 200 px, a thumbnail   | image shorter side      |
| extreme_aspect   | true caption; a banner or strip, aspect ratio 3.5-6     | image aspect ratio      |
| boilerplate      | "IMG_2041.JPG", "click to enlarge", "1920x1080", ...    | alt-text shared by >10  |
| garbage          | true caption with random garbage tokens inserted        | rare unigrams/bigrams   |
| too_short        | one or two words ("star", "赤い星")                      | fewer than 3 unigrams   |
| too_long         | true caption followed by SEO spam                        | more than 20 unigrams   |
| reused_image     | one placeholder image behind more than 1000 alt-texts   | image alt-text count    |
| near_duplicate   | a re-encoded, re-lit copy of a test image               | eval near-duplicates    |
| mismatched       | the caption of another image                             | nothing (by design)     |
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, fields

from PIL import Image, ImageDraw, ImageEnhance

from mling.synthetic.captions import name_phrase
from mling.synthetic.scenes import Scene

KINDS = ("too_small", "extreme_aspect", "boilerplate", "garbage", "too_short", "too_long",
         "reused_image", "near_duplicate", "mismatched")  # fmt: skip


@dataclass
class NoiseRates:
    """Fraction of all pairs given each noise kind; the rest are clean."""

    too_small: float = 0.03  # original shorter side 40-190 px
    extreme_aspect: float = 0.03  # aspect ratio 3.5-6, either orientation
    boilerplate: float = 0.08  # one of BOILERPLATE, each shared by many images
    garbage: float = 0.04  # 1-3 random tokens inserted into a true caption
    too_short: float = 0.03  # 1-2 words
    too_long: float = 0.03  # a true caption plus 15-30 words of spam
    reused_image: float = 0.04  # rows behind placeholder images, each with > threshold texts
    near_duplicate: float = 0.01  # altered copies of test images, with a true caption
    mismatched: float = 0.08  # the caption of another pair's scene

    def counts(self, pairs: int) -> dict[str, int]:
        """Exact rows per kind for a corpus of `pairs` rows (clean gets the rest)."""
        counts = {f.name: round(getattr(self, f.name) * pairs) for f in fields(self)}
        if sum(counts.values()) > pairs:
            raise ValueError(f"noise rates add up to more than 1 ({sum(counts.values())}/{pairs})")
        counts["clean"] = pairs - sum(counts.values())
        return counts


BOILERPLATE = (
    "IMG_2041.JPG", "DSC_0042.jpg", "click to enlarge", "1920x1080", "image", "photo",
    "untitled", "thumbnail", "Bild vergrößern", "cliquez pour agrandir", "ampliar imagen",
    "画像", "изображение", "صورة", "obrázek", "no image available",
)  # fmt: skip
SPAM = [
    "best",
    "free",
    "hd",
    "wallpapers",
    "download",
    "high",
    "quality",
    "pictures",
    "for",
    "desktop",
    "and",
    "mobile",
    "phone",
    "backgrounds",
    "new",
    "collection",
    "2024",
    "top",
    "rated",
    "images",
    "stock",
    "photo",
    "royalty",
    "free",
    "vector",
    "art",
    "cheap",
    "price",
    "buy",
    "now",
    "online",
    "shop",
]


def short_caption(scene: Scene, language: str, rng: random.Random) -> str:
    """One or two words naming the first group's shape: 'star', 'roter Stern', '赤い星'."""
    return name_phrase(scene.groups[0], language, colour=rng.random() < 0.5)


def garbage_caption(caption: str, rng: random.Random) -> str:
    """The caption with 1-3 random tokens (unique in practice) inserted between its words."""
    words = caption.split()
    alphabet = string.ascii_lowercase + string.digits + "#@_"
    for _ in range(rng.randint(1, 3)):
        token = "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 9)))
        words.insert(rng.randint(0, len(words)), token)
    return " ".join(words)


def long_caption(caption: str, rng: random.Random) -> str:
    """The caption followed by 15-30 words of keyword spam: more than 20 unigrams in all."""
    spam = [rng.choice(SPAM) for _ in range(rng.randint(15, 30))]
    return caption + " " + " ".join(spam)


def placeholder_image(index: int, size: int) -> Image.Image:
    """A 'no image' placeholder: a grey card with a crossed frame, one design per index."""
    rng = random.Random(f"placeholder-{index}")
    shade = rng.randint(150, 220)
    image = Image.new("RGB", (size, size), (shade, shade, shade))
    draw = ImageDraw.Draw(image)
    m = size // 6
    draw.rectangle([m, m, size - m, size - m], outline=(90, 90, 90), width=max(1, size // 32))
    draw.line([m, m, size - m, size - m], fill=(90, 90, 90), width=max(1, size // 32))
    draw.line([m, size - m, size - m, m], fill=(90, 90, 90), width=max(1, size // 32))
    return image


def near_duplicate(image: Image.Image, rng: random.Random) -> Image.Image:
    """What re-posting does to a photo: brightness and contrast changes, then a new JPEG
    encoding. Stays within 4 bits of the original's perceptual hash in 99% of cases at 64 px;
    a crop or rescale moves the hash of so small an image by up to 10 bits, as far as
    unrelated scenes sometimes are, so none is applied."""
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.95, 1.05))
    return ImageEnhance.Contrast(image).enhance(rng.uniform(0.95, 1.05))
