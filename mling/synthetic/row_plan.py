"""Rows of the synthetic noisy corpus: a plan (which row is which kind, in which language),
then each row built from its plan alone, so rows can be built in any order, by any number of
processes, and always come out the same for the same seed.

A row is a pair-schema dict (`key`, `caption`, `url`, `width`, `height`, `image`) plus two
columns that say what the generator did: `synthetic_noise` (`clean` or a kind from
`mling/synthetic/noise.py`) and `synthetic_language` (the language of the caption's text; `und` for
boilerplate, which has none of its own).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mling.common.errors import InputError
from mling.synthetic.captions import LANGUAGES, caption
from mling.synthetic.noise import (
    BOILERPLATE,
    KINDS,
    NoiseRates,
    garbage_caption,
    long_caption,
    near_duplicate,
    placeholder_image,
    short_caption,
)
from mling.synthetic.scenes import encode, render_scene, sample_scene

# Share of each language among captions: English-heavy, as web alt-text is.
LANGUAGE_WEIGHTS = {"en": 0.30, "de": 0.12, "fr": 0.12, "cs": 0.12, "es": 0.09, "ru": 0.09,
                    "ar": 0.08, "ja": 0.08}  # fmt: skip
TLD = {"en": "com", "de": "de", "fr": "fr", "cs": "cz", "es": "es", "ru": "ru", "ar": "eg",
       "ja": "jp"}  # fmt: skip


@dataclass(frozen=True)
class SceneConfig:
    image_px: int = (
        64  # side of the stored images, pixels (already downscaled, as img2dataset does)
    )
    two_groups: float = 0.0  # fraction of scenes with two groups of objects


@dataclass(frozen=True)
class RowPlan:
    index: int  # row number; the key and the row's random stream derive from it
    kind: str  # "clean" or one of noise.KINDS
    language: str  # language of the caption
    ref: int = -1  # reused_image: placeholder number; near_duplicate: test image number


def plan_corpus(
    pairs: int,
    seed: int,
    rates: NoiseRates,
    test_images: int,
    reuse_threshold: int,
) -> list[RowPlan]:
    """Which row is which kind, in which language, in a shuffled order.

    Reused-image rows are spread over placeholders that each get more than
    `reuse_threshold` alt-texts; when the rate gives fewer rows than that, the rows are
    raised to threshold + 1 so the noise exists at all (the report shows the real count).
    """
    rng = random.Random(f"plan-{seed}")
    try:
        counts = rates.counts(pairs)
    except ValueError as error:  # the rates add up to more than 1
        raise InputError(f"--noise: {error}; lower some rates") from None
    reused = counts["reused_image"]
    if 0 < reused <= reuse_threshold:
        counts["clean"] -= reuse_threshold + 1 - reused
        counts["reused_image"] = reused = reuse_threshold + 1
        if counts["clean"] < 0:
            raise InputError(
                f"{pairs} pairs cannot hold a reused image with more than {reuse_threshold} "
                "alt-texts; lower --reuse-threshold or the reused_image rate, or add pairs"
            )
    placeholders = max(1, reused // (reuse_threshold + 1))
    kinds = [kind for kind in ("clean", *KINDS) for _ in range(counts[kind])]
    rng.shuffle(kinds)
    languages = rng.choices(
        list(LANGUAGE_WEIGHTS), weights=list(LANGUAGE_WEIGHTS.values()), k=pairs
    )
    plans, reused_seen = [], 0
    for index, (kind, language) in enumerate(zip(kinds, languages, strict=True)):
        ref = -1
        if kind == "reused_image":
            ref, reused_seen = reused_seen % placeholders, reused_seen + 1
        elif kind == "near_duplicate":
            ref = rng.randrange(test_images)
        plans.append(RowPlan(index, kind, "und" if kind == "boilerplate" else language, ref))
    return plans


def test_scene_rng(seed: int, index: int) -> random.Random:
    """The random stream of test image `index`: shared by the test set and its near-duplicates."""
    return random.Random(f"test-{seed}-{index}")


def _original_size(rng: random.Random) -> tuple[int, int]:
    """A plausible original photo size: 300-1600 px wide, aspect 2:3 to 3:2."""
    width = rng.randint(300, 1600)
    return width, max(220, round(width / rng.uniform(2 / 3, 3 / 2)))


def build_row(plan: RowPlan, seed: int, scenes: SceneConfig) -> dict:
    """The pair-schema row of `plan`, from `plan` and `seed` alone."""
    rng = random.Random(f"row-{seed}-{plan.index}")
    key = f"syn{plan.index:08d}"
    px = scenes.image_px
    scene = sample_scene(rng, scenes.two_groups)
    language = plan.language if plan.language != "und" else rng.choice(LANGUAGES)
    text = caption(scene, language, rng)
    width, height = _original_size(rng)
    image = render_scene(scene, rng, px)
    url = f"https://img.example.{TLD.get(language, 'com')}/{rng.getrandbits(32):08x}/{key}.jpg"
    kind = plan.kind
    if kind == "too_small":
        width, height = rng.randint(40, 190), rng.randint(40, 190)
        image = render_scene(scene, rng, max(8, px * min(width, height) // 200))
    elif kind == "extreme_aspect":
        ratio = rng.uniform(3.5, 6.0)
        long_side = round(px * ratio)
        width, height = (long_side, px) if rng.random() < 0.5 else (px, long_side)
        image = render_scene(scene, rng, width, height)
        width, height = width * 8, height * 8
    elif kind == "boilerplate":
        text = rng.choice(BOILERPLATE)
    elif kind == "garbage":
        text = garbage_caption(text, rng)
    elif kind == "too_short":
        text = short_caption(scene, language, rng)
    elif kind == "too_long":
        text = long_caption(text, rng)
    elif kind == "reused_image":
        image = placeholder_image(plan.ref, px)
        width = height = 400
        url = f"https://cdn.example.com/static/placeholder-{plan.ref}.png"
    elif kind == "near_duplicate":
        test_rng = test_scene_rng(seed, plan.ref)
        test_scene = sample_scene(test_rng, scenes.two_groups)
        image = near_duplicate(render_scene(test_scene, test_rng, px), rng)
        text = caption(test_scene, language, rng)
    elif kind == "mismatched":
        text = caption(sample_scene(rng, scenes.two_groups), language, rng)
    fmt = "PNG" if kind == "reused_image" else "JPEG"
    return {
        "key": key,
        "caption": text,
        "url": url,
        "width": width,
        "height": height,
        "image": encode(image, fmt, quality=rng.randint(80, 95)),
        "synthetic_noise": kind,
        "synthetic_language": plan.language,
    }
