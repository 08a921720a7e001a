"""Multi30k captions, read from the official repository layout as it is (gzip included).

ROOT/data/task1/raw/{split}.{en,de,fr,cs}.gz          one caption per line, line i <-> image i
ROOT/data/task1/image_splits/{split}.txt              image file names, one per line
ROOT/data/task2/raw/{split}.{1..5}.{en,de}.gz         five independent captions per image
ROOT/data/task2/image_splits/{split}_images.txt

The ALIGN paper's setup (Table 11) is the 1,000-image test_2016 split with English and German
from task 2 (5 captions per image) and French and Czech from task 1 (1 caption per image):
`source="auto"` does exactly that, and takes task 1 wherever task 2 has no such split.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from mling.common.errors import InputError
from mling.evaluation.caption_sets import CaptionSet

LANGUAGES = ("en", "de", "fr", "cs")
TASK2_LANGUAGES = ("en", "de")
TASK2_SPLITS = ("train", "val", "test_2016")
# task 1 calls the 2016 test split test_2016_flickr, task 2 calls it test_2016
TASK1_NAMES = {"test_2016": "test_2016_flickr"}
SPLITS = ("test_2016", "test_2017_flickr", "test_2018_flickr", "test_2017_mscoco", "val", "train")
# image counts of the official release, to say when a run is not comparable with published tables
OFFICIAL_IMAGES = {
    "train": 29000,
    "val": 1014,
    "test_2016": 1000,
    "test_2017_flickr": 1000,
    "test_2017_mscoco": 461,
    "test_2018_flickr": 1071,
}
SOURCES = ("auto", "task1", "task2")


def caption_source(language: str, split: str, source: str = "auto") -> str:
    """Which task's captions to read: task2 (5 per image) for en/de where it exists, else task1."""
    if source not in SOURCES:
        raise InputError(f"unknown caption source {source!r}; choose one of: {', '.join(SOURCES)}")
    if source == "auto":
        return "task2" if language in TASK2_LANGUAGES and split in TASK2_SPLITS else "task1"
    return source


def read_multi30k(
    root: str | Path, language: str, split: str = "test_2016", source: str = "auto", images=None
) -> CaptionSet:
    """One language of one Multi30k split as a CaptionSet; images are `images/NAME` (default:
    the bare names relative to the working directory). Raises InputError on missing files and on
    caption counts that do not match the split's image list."""
    root = Path(root)
    if not (root / "data").is_dir():
        raise InputError(
            f"{root} is not a Multi30k repository (no data/ folder); pass --multi30k pointing at a "
            "clone of github.com/multi30k/dataset"
        )
    task = caption_source(language, split, source)
    if task == "task2":
        image_list = root / "data/task2/image_splits" / f"{split}_images.txt"
        files = [root / "data/task2/raw" / f"{split}.{i}.{language}.gz" for i in range(1, 6)]
    else:
        name = TASK1_NAMES.get(split, split)
        image_list = root / "data/task1/image_splits" / f"{name}.txt"
        files = [root / "data/task1/raw" / f"{name}.{language}.gz"]

    names = _read_lines(image_list)
    captions: list[str] = []
    text_to_image: list[int] = []
    for file in files:
        lines = _read_lines(file)
        if len(lines) != len(names):
            raise InputError(
                f"{file} has {len(lines)} captions but {image_list} lists {len(names)} images; "
                "the caption and image-split files must come from the same Multi30k release"
            )
        captions.extend(lines)
        text_to_image.extend(range(len(names)))
    image_dir = Path(images) if images is not None else Path()
    return CaptionSet(
        name=f"multi30k/{split}",
        language=language,
        images=tuple(image_dir / name for name in names),
        captions=tuple(captions),
        text_to_image=tuple(text_to_image),
        source=str(files[0].relative_to(root)).replace(".1.", ".{1..5}.")
        if task == "task2"
        else str(files[0].relative_to(root)),
    )


def comparability_note(split: str, n_images: int) -> str | None:
    """A line for the report when the split's size differs from the official release."""
    official = OFFICIAL_IMAGES.get(split)
    if official is None or official == n_images:
        return None
    return (
        f"{split} has {n_images} images here but {official} in the official release: "
        "figures are not comparable with published ones"
    )


def _read_lines(path: Path) -> list[str]:
    """Lines without their newline; a final newline does not make an extra empty line."""
    if not path.is_file():
        raise InputError(f"{path} is missing; is the Multi30k split or language spelled right?")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", newline="\n") as file:
            text = file.read()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise InputError(f"{path} cannot be read as UTF-8 text ({error}); re-download it") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]
