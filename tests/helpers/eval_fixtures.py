"""Builders for the evaluation tests: images, a Multi30k tree in the real layout, tiny models."""

from __future__ import annotations

import gzip
from pathlib import Path

from PIL import Image

from tests.helpers.multilingual import CAPTIONS
from tests.helpers.tiny_model import build_tiny_align

N_IMAGES = 6  # the fixtures have six captions per language


def write_images(folder: Path, names: list[str], size: tuple[int, int] = (40, 30)) -> list[Path]:
    """Small JPEGs, each a different two-colour split so the models see different inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        image = Image.new("RGB", size, (40 * i % 256, 255 - 30 * i % 256, 90))
        image.paste((10, 20 * i % 256, 200), (0, 0, size[0] // 2, size[1] // (1 + i % 3)))
        image.save(folder / name, quality=90)
        paths.append(folder / name)
    return paths


def caption_variants(caption: str) -> list[str]:
    """Five different captions of one image, as task 2 has (independently written there)."""
    return [
        caption,
        caption.lower(),
        caption.rstrip("."),
        caption.upper(),
        f"{caption} ({caption})",
    ]


def _write_gz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.write("".join(f"{line}\n" for line in lines))


def write_multi30k(root: Path, split: str = "test_2016") -> list[str]:
    """A Multi30k clone with one split of N_IMAGES images; returns the image file names."""
    names = [f"{1000092795 + 7 * i}.jpg" for i in range(N_IMAGES)]
    task1 = {"test_2016": "test_2016_flickr"}.get(split, split)
    (root / "data/task1/image_splits").mkdir(parents=True, exist_ok=True)
    (root / "data/task1/image_splits" / f"{task1}.txt").write_text("\n".join(names) + "\n")
    for language in ("en", "de", "fr", "cs"):
        _write_gz(root / "data/task1/raw" / f"{task1}.{language}.gz", CAPTIONS[language])
    (root / "data/task2/image_splits").mkdir(parents=True, exist_ok=True)
    (root / "data/task2/image_splits" / f"{split}_images.txt").write_text("\n".join(names) + "\n")
    for language in ("en", "de"):
        variants = [caption_variants(caption) for caption in CAPTIONS[language]]
        for k in range(5):
            lines = [captions[k] for captions in variants]
            _write_gz(root / "data/task2/raw" / f"{split}.{k + 1}.{language}.gz", lines)
    return names


def tiny_models(folder: Path, tokenizer_dir: Path, names: list[str]) -> list[Path]:
    """One tiny AlignModel per name at folder/NAME/model, as mling/train.py exports them."""
    return [
        build_tiny_align(folder / name / "model", tokenizer_dir, seed=seed)
        for seed, name in enumerate(names)
    ]
