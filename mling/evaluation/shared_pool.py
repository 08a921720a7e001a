"""The shared pool: the images every compared language names, so languages meet on one footing.

Each language's image→text ranking uses only its own captions, so it ranks only the images it
names: a language that names 47 of 1,000 drawings is ranked among 47 candidates and scores
three times what English does among 1,000. Languages are compared fairly on the same images
and candidates: those that name at least MIN_IMAGES images form the pool's languages, the pool
is the images all of them name, and the rest are listed apart with how many images they name.
Languages that each name enough images may still share few (on the emoji set's 1,000 held-out
drawings the 123 languages naming 300 or more share none): then the languages naming the
fewest are moved apart, one at a time, until the rest share at least MIN_IMAGES. A pool under
MIN_SHARED images is refused: its recall would say more about chance than about the languages.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from mling.evaluation.caption_sets import CaptionSet

# A language naming fewer images than this is listed apart rather than shrinking everyone's
# pool to its few images: 300 candidates keep chance mR under 2 (1.78). It is also the size
# the pool is kept at when languages that each name enough share too few (`shared_pool`).
MIN_IMAGES = 300
# Fewer shared images than this and no comparison is made: chance mR would be 5.3 or more, and
# each image→text query would be a point of R@1 or more.
MIN_SHARED = 100


@dataclass(frozen=True)
class SharedPool:
    """Which languages are compared, on which images; `refused` says why none are, if so."""

    min_images: int  # a language must name this many images to be in the pool
    languages: tuple[str, ...]  # the pool's languages, in the caption sets' order
    apart: dict[str, int] = field(default_factory=dict)  # {language: images it names}, the rest
    # of `apart`, those that name min_images or more but were moved apart, fewest first, so
    # that the others share min_images
    moved: tuple[str, ...] = ()
    images: tuple[int, ...] = ()  # (P,) indices into CaptionSet.images named by every language
    refused: str | None = None  # why the languages are not compared on the pool, or None
    # {model: {language: retrieval_metrics on the pool}}, filled in by evaluate_retrieval
    models: dict[str, dict[str, dict]] = field(default_factory=dict)


def images_named(caption_set: CaptionSet) -> int:
    """How many of the set's images have at least one caption: its own pool's size."""
    return len(set(caption_set.text_to_image))


def shared_pool(
    sets: Sequence[CaptionSet], min_images: int = MIN_IMAGES, min_shared: int = MIN_SHARED
) -> SharedPool:
    """Caption sets of one image list (N images each) -> the SharedPool of the languages naming
    at least `min_images` images: their P shared image indices, sorted, and the other languages
    with their counts. While P < `min_images`, the language naming the fewest images (ties:
    by code) is moved apart (`moved`). `refused` is set, and no comparison should be made, when the sets list
    different images, when no language names `min_images`, or when P < `min_shared`."""
    named = {s.language: set(s.text_to_image) for s in sets}
    languages = tuple(language for language, images in named.items() if len(images) >= min_images)
    apart = {
        language: len(images) for language, images in named.items() if language not in languages
    }
    pool = SharedPool(min_images, languages, apart)
    if len({s.images for s in sets}) > 1:
        return _refuse(pool, "the languages' caption sets list different images")
    if not languages:
        most = max(apart.values(), default=0)
        return _refuse(pool, f"no language names at least {min_images} images (the most: {most})")
    shared = set.intersection(*(named[language] for language in languages))
    moved: list[str] = []
    while len(shared) < min_images and len(languages) > 1:
        fewest = min(languages, key=lambda language: (len(named[language]), language))
        languages = tuple(language for language in languages if language != fewest)
        moved.append(fewest)
        shared = set.intersection(*(named[language] for language in languages))
    apart = {**apart, **{language: len(named[language]) for language in moved}}
    shared = tuple(sorted(shared))
    pool = SharedPool(min_images, languages, apart, tuple(moved), shared)
    if len(shared) < min_shared:
        return _refuse(
            pool,
            f"the {_count(len(languages), 'language')} naming at least {min_images} images "
            f"{'shares' if len(languages) == 1 else 'share'} {_count(len(shared), 'image')}; "
            f"a comparison needs at least {min_shared}",
        )
    return pool


def _refuse(pool: SharedPool, reason: str) -> SharedPool:
    return dataclasses.replace(pool, refused=reason)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def pool_captions(
    text_to_image: torch.Tensor | Sequence[int], images: torch.Tensor | Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(M,) image index per caption, (P,) the pool's image indices -> (M',) indices of the
    captions whose image is in the pool and (M',) their image's position in the pool, the
    `text_to_image` of `image_embeds[images]`."""
    text_to_image = torch.as_tensor(text_to_image, dtype=torch.long).view(-1)
    images = torch.as_tensor(images, dtype=torch.long).view(-1)
    size = 1 + max((int(t.max()) for t in (text_to_image, images) if t.numel()), default=-1)
    position = torch.full((size,), -1, dtype=torch.long)
    position[images] = torch.arange(len(images))
    mapped = position[text_to_image]
    kept = torch.nonzero(mapped >= 0).flatten()
    return kept, mapped[kept]


def add_pool_argument(parser: argparse.ArgumentParser) -> None:
    """--pool-min-images, for every evaluator whose report compares languages on retrieval."""
    parser.add_argument(
        "--pool-min-images",
        type=image_count,
        default=MIN_IMAGES,
        metavar="N",
        help=f"compare languages on the images shared by those naming at least N images; the "
        f"rest are listed apart, and fewer than {MIN_SHARED} shared images is no comparison "
        f"(default {MIN_IMAGES}; 0: each language on its own images only)",
    )


def image_count(text: str) -> int:
    """argparse type of --pool-min-images: a number of images, 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; pass 0 to turn the pool off")
    return value
