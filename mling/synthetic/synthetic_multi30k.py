"""The synthetic test set, written in the official Multi30k layout so `eval/multi30k.py` reads
it exactly as it reads the real one:

    ROOT/data/task1/raw/test_2016_flickr.{en,de,fr,cs}.gz   1 caption per image
    ROOT/data/task1/image_splits/test_2016_flickr.txt       image file names
    ROOT/data/task2/raw/test_2016.{1..5}.{en,de}.gz         5 independent captions per image
    ROOT/data/task2/image_splits/test_2016_images.txt
    IMAGES/NNNNNNNNNN.jpg                                   the images (the Flickr30k folder)

English and German get five captions per image, in four different phrasings and with fresh
synonym choices (the fifth repeats a phrasing with other words where it can); French and
Czech get one, as in the paper's setup.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

from mling.synthetic.captions import PHRASINGS, caption
from mling.synthetic.row_plan import SceneConfig, test_scene_rng
from mling.synthetic.scenes import Scene, encode, render_scene, sample_scene

SPLIT_TASK1 = "test_2016_flickr"
SPLIT_TASK2 = "test_2016"
TASK1_LANGUAGES = ("en", "de", "fr", "cs")
TASK2_LANGUAGES = ("en", "de")
CAPTIONS_PER_IMAGE = 5


def image_names(seed: int, count: int) -> list[str]:
    """Flickr-like ten-digit file names (`1007129816.jpg`), distinct, fixed by the seed."""
    numbers = random.Random(f"names-{seed}").sample(range(10**9, 10**10), count)
    return [f"{number}.jpg" for number in numbers]


def write_multi30k(
    root: Path, images_dir: Path, count: int, seed: int, scenes: SceneConfig
) -> list[Scene]:
    """Render `count` test images into `images_dir` and write their captions under `root`.
    Returns the scenes, in split order."""
    names, drawn = image_names(seed, count), []
    task1: dict[str, list[str]] = {language: [] for language in TASK1_LANGUAGES}
    task2: dict[str, list[list[str]]] = {
        language: [[] for _ in range(CAPTIONS_PER_IMAGE)] for language in TASK2_LANGUAGES
    }
    images_dir.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        rng = test_scene_rng(seed, index)  # the same stream builds the near-duplicate noise
        scene = sample_scene(rng, scenes.two_groups)
        image = render_scene(scene, rng, scenes.image_px)
        (images_dir / names[index]).write_bytes(encode(image, "JPEG", quality=92))
        drawn.append(scene)
        for language in TASK2_LANGUAGES:
            order = rng.sample(range(PHRASINGS), PHRASINGS)
            order += [rng.randrange(PHRASINGS) for _ in range(CAPTIONS_PER_IMAGE - PHRASINGS)]
            for slot, phrasing in enumerate(order):
                task2[language][slot].append(caption(scene, language, rng, phrasing))
        for language in TASK1_LANGUAGES:
            task1[language].append(caption(scene, language, rng))

    data = root / "data"
    _write_lines(data / "task1/image_splits" / f"{SPLIT_TASK1}.txt", names, gz=False)
    _write_lines(data / "task2/image_splits" / f"{SPLIT_TASK2}_images.txt", names, gz=False)
    for language, lines in task1.items():
        _write_lines(data / "task1/raw" / f"{SPLIT_TASK1}.{language}.gz", lines)
    for language, slots in task2.items():
        for slot, lines in enumerate(slots, start=1):
            _write_lines(data / "task2/raw" / f"{SPLIT_TASK2}.{slot}.{language}.gz", lines)
    return drawn


def _write_lines(path: Path, lines: list[str], gz: bool = True) -> None:
    """One line per entry, newline-terminated, UTF-8; gzip with a fixed mtime so the same
    seed gives byte-identical files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(line + "\n" for line in lines).encode("utf-8")
    if gz:
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
