"""Retrieval sets: image files and their captions in one language, read from caption files.

A `CaptionSet` is what every retrieval evaluation consumes: N image files, M captions and
`text_to_image` (M,), the image index of each caption. Three caption-file formats are read:

- `jsonl` (ours), one object per line, image paths relative to the image folder; lines with
  the same image are merged, so one caption per line works as well as all of them at once:
  `{"image": "a.jpg", "captions": {"en": ["A dog."], "de": ["Ein Hund."]}}`
  `{"image": "a.jpg", "captions": ["A dog.", "A brown dog."], "language": "en"}`
  `{"image": "a.jpg", "caption": "Un chien.", "language": "fr"}`
- `xm3600`: Crossmodal-3600's `captions.jsonl` as published (`{"image/key": K, "en":
  {"caption": [...]}, ...}`, images `K.jpg`).
- `karpathy`: a Karpathy split file (`dataset_flickr30k.json`, `dataset_coco.json`), one
  language, the images of `--split` (default `test`) at `filepath/filename`.

Every image of the file is a candidate in every language; an image without a caption in a
language is a distractor there, not a query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mling.common.errors import InputError
from mling.common.json_shapes import expect, expect_texts, read_json

FORMATS = ("jsonl", "xm3600", "karpathy")


@dataclass(frozen=True)
class CaptionSet:
    """One language of one retrieval set."""

    name: str  # the set, e.g. "multi30k/test_2016" or the caption file's stem
    language: str  # ISO code as given by the data, e.g. "en", "zh"
    images: tuple[Path, ...]  # N image files
    captions: tuple[str, ...]  # M captions
    text_to_image: tuple[int, ...]  # M image indices into `images`
    source: str = ""  # where the captions came from, for the report

    def describe(self) -> dict:
        """Counts and provenance for the report's `data` section."""
        return {
            "set": self.name,
            "images": len(self.images),
            "captions": len(self.captions),
            "queries_i2t": len(set(self.text_to_image)),
            "source": self.source,
        }


def sets_from_captions(
    name: str,
    image_dir: Path,
    image_captions: Iterable[tuple[str, str, str]],
    languages: Iterable[str] | None = None,
    source: str = "",
) -> list[CaptionSet]:
    """(image path, language, caption) triples -> one CaptionSet per language, images shared.

    Images keep the order of first appearance; languages are sorted unless `languages` is given.
    """
    order: dict[str, int] = {}
    by_language: dict[str, tuple[list[str], list[int]]] = {}
    for image, language, caption in image_captions:
        index = order.setdefault(image, len(order))
        captions, text_to_image = by_language.setdefault(language, ([], []))
        captions.append(caption)
        text_to_image.append(index)
    wanted = list(languages) if languages else sorted(by_language)
    missing = [language for language in wanted if language not in by_language]
    if missing:
        found = ", ".join(sorted(by_language)) or "none"
        raise InputError(
            f"{source or name} has no captions in {', '.join(missing)}; found: {found}"
        )
    images = tuple(image_dir / image for image in order)
    return [
        CaptionSet(
            name, lang, images, tuple(by_language[lang][0]), tuple(by_language[lang][1]), source
        )
        for lang in wanted
    ]


def read_caption_file(
    path: str | Path,
    image_dir: str | Path,
    fmt: str = "jsonl",
    languages: Iterable[str] | None = None,
    split: str = "test",
    language: str = "en",
) -> list[CaptionSet]:
    """A caption file in one of FORMATS -> one CaptionSet per language.

    `language` names the captions of formats that do not carry one (karpathy, bare jsonl).
    """
    path, image_dir = Path(path), Path(image_dir)
    if not path.is_file():
        raise InputError(f"caption file {path} does not exist; pass --captions FILE")
    if fmt not in FORMATS:
        raise InputError(f"unknown caption format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    readers = {"jsonl": _jsonl_triples, "xm3600": _xm3600_triples, "karpathy": _karpathy_triples}
    triples = list(readers[fmt](path, split=split, language=language))
    if not triples:
        raise InputError(f"{path} holds no captions (format {fmt}); check --format and --split")
    return sets_from_captions(path.stem, image_dir, triples, languages, source=str(path))


def _json_lines(path: Path) -> Iterable[tuple[int, dict]]:
    try:
        with path.open(encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InputError(f"{path}:{number} is not JSON ({error.msg})") from None
                yield number, expect(record, dict, f"{path}:{number}", "a JSON object")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text; is --captions a caption file?") from None


def _jsonl_triples(path: Path, language: str, **_: object) -> Iterable[tuple[str, str, str]]:
    for number, record in _json_lines(path):
        where = f"{path}:{number}"
        image = record.get("image")
        if not isinstance(image, str) or not image:
            raise InputError(f'{where} has no "image" path; every line needs one')
        captions = record.get("captions", record.get("caption"))
        if captions is None:
            raise InputError(f'{where} has no "captions" or "caption"')
        if isinstance(captions, dict):
            for lang, texts in captions.items():
                texts = expect_texts(texts, f'{where}: "captions" in {lang!r}')
                yield from ((image, lang, text) for text in texts)
        else:
            lang = expect(record.get("language", language), str, f'{where}: "language"', "a code")
            texts = expect_texts(captions, f'{where}: "captions"')
            yield from ((image, lang, text) for text in texts)


def _xm3600_triples(path: Path, **_: object) -> Iterable[tuple[str, str, str]]:
    for number, record in _json_lines(path):
        key = record.get("image/key")
        if not isinstance(key, str):
            raise InputError(f'{path}:{number} has no "image/key"; is this Crossmodal-3600?')
        for lang, value in record.items():
            if isinstance(value, dict) and "caption" in value:
                texts = expect_texts(value["caption"], f'{path}:{number}: "{lang}" "caption"')
                yield from ((f"{key}.jpg", lang, text) for text in texts)


def _karpathy_triples(path: Path, split: str, language: str) -> Iterable[tuple[str, str, str]]:
    """Karpathy's layout: {"images": [{"split", "filepath" (COCO only), "filename",
    "sentences": [{"raw": CAPTION}, ...]}, ...]}."""
    data = read_json(path, "a Karpathy split file", "pass --format for the file you have")
    where = f'{path}: "images"'
    if not isinstance(data, dict) or "images" not in data:
        raise InputError(f'{path} is not a Karpathy split file (JSON with "images")')
    images = expect(data["images"], list, where, "a list of image entries")
    for i, image in enumerate(images):
        entry = f"{path}: image entry {i}"
        expect(image, dict, entry, 'an object with "filename" and "sentences"')
        if image.get("split") != split:
            continue
        filename = image.get("filename")
        if not isinstance(filename, str) or not filename:
            raise InputError(f'{entry} has no "filename"; every entry names its image file')
        folder = expect(image.get("filepath", ""), str, f'{entry}: "filepath"', "a folder name")
        sentences = image.get("sentences")
        expect(sentences, list, f'{entry} ({filename}): "sentences"', 'a list of {"raw": TEXT}')
        for sentence in sentences:
            raw = sentence.get("raw") if isinstance(sentence, dict) else None
            if not isinstance(raw, str):
                raise InputError(f'{entry} ({filename}): a sentence without its "raw" text')
            yield str(Path(folder) / filename), language, raw
