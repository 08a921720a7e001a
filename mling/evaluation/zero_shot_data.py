"""Labelled images and multilingual class prompts for zero-shot classification.

Images: a folder with one subfolder per class (`DIR/dog/1.jpg`, the ImageFolder layout), or a
JSONL labels file with one `{"image": "rel/path.jpg", "label": "dog"}` per line.

Class prompts: a JSON file giving templates per language and names per class and language
(a list of names is ensembled like the templates):

    {"templates": {"en": ["a photo of a {}."], "de": ["ein Foto von {}."], "ja": ["{}の写真。"]},
     "classes": {"dog": {"en": "dog", "de": ["Hund", "Hündin"], "ja": "犬"}, ...}}

Without one, class names are the labels (`golden_retriever` -> "golden retriever") in English
with DEFAULT_TEMPLATES.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mling.common.errors import InputError
from mling.common.json_shapes import expect, expect_texts, read_json
from mling.pairs.schema import IMAGE_SUFFIXES

DEFAULT_TEMPLATES = {
    "en": [
        "a photo of a {}.",
        "a picture of a {}.",
        "a close-up photo of a {}.",
        "a photo of the small {}.",
        "a photo of the large {}.",
    ]
}


_TEMPLATES = 'an object of templates per language ({"en": ["a photo of a {}."]})'
_CLASSES = 'an object of names per class and language ({"dog": {"en": "dog"}})'


@dataclass(frozen=True)
class LabelledImages:
    images: tuple[Path, ...]  # N image files
    labels: tuple[str, ...]  # N class keys


@dataclass(frozen=True)
class ClassPrompts:
    classes: tuple[str, ...]  # C class keys, the labels' vocabulary, in report order
    names: dict[str, list[list[str]]]  # language -> C lists of names
    templates: dict[str, list[str]]  # language -> templates with "{}"


def read_labelled_images(images: str | Path, labels: str | Path | None = None) -> LabelledImages:
    """From a labels JSONL when given, else from the class subfolders of `images`."""
    images = Path(images)
    if not images.is_dir():
        raise InputError(f"image folder {images} does not exist; pass --images DIR")
    pairs: list[tuple[Path, str]] = []
    if labels is not None:
        labels = Path(labels)
        if not labels.is_file():
            raise InputError(f"labels file {labels} does not exist; pass --labels FILE")
        try:
            lines = labels.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise InputError(f"labels file {labels} is not UTF-8 text; pass a JSONL file") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            image = record.get("image") if isinstance(record, dict) else None
            label = record.get("label") if isinstance(record, dict) else None
            if not isinstance(image, str) or not isinstance(label, str | int) or not image:
                raise InputError(f'{labels}:{number} is not {{"image": PATH, "label": CLASS}}')
            pairs.append((images / image, str(label)))
    else:
        for folder in sorted(p for p in images.iterdir() if p.is_dir()):
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            pairs.extend((file, folder.name) for file in files)
    if not pairs:
        raise InputError(
            f"no labelled images under {images}: use one subfolder per class or pass --labels"
        )
    return LabelledImages(tuple(p for p, _ in pairs), tuple(label for _, label in pairs))


def read_class_prompts(
    path: str | Path | None, labels: Sequence[str], languages: Sequence[str] | None = None
) -> ClassPrompts:
    """Class names and templates per language, checked against the labels in use."""
    if path is None:
        classes = tuple(sorted(set(labels)))
        names = {"en": [[c.replace("_", " ")] for c in classes]}
        spec_templates = DEFAULT_TEMPLATES
    else:
        path = Path(path)
        spec = read_json(path, "a classes file", "pass --classes FILE")
        if not isinstance(spec, dict) or not {"templates", "classes"} <= set(spec):
            raise InputError(f'{path} needs JSON with "templates" and "classes"')
        where = f'{path}: "templates"'
        spec_templates = {
            language: expect_texts(texts, f"{where} in {language!r}")
            for language, texts in expect(spec["templates"], dict, where, _TEMPLATES).items()
        }
        where = f'{path}: "classes"'
        spec_classes = {
            c: expect(names, dict, f"{path}: class {c!r}", "an object of names per language")
            for c, names in expect(spec["classes"], dict, where, _CLASSES).items()
        }
        classes = tuple(spec_classes)
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise InputError(
                f"{len(unknown)} labels are not classes in {path} ({', '.join(unknown[:3])}); "
                'add them under "classes"'
            )
        names = {}
        for language in languages or spec_templates:
            if language not in spec_templates:
                continue  # reported below
            names[language] = []
            for c in classes:
                value = spec_classes[c].get(language)
                if not value:
                    raise InputError(
                        f"{path}: class {c!r} has no name in {language!r}; add one or leave "
                        f"{language} out with --languages"
                    )
                names[language].append(expect_texts(value, f"{path}: class {c!r} in {language!r}"))
    wanted = list(languages) if languages else list(spec_templates)
    for language in wanted:
        if language not in spec_templates:
            raise InputError(f'no templates for {language!r}; add them under "templates"')
        if not spec_templates[language] or any("{}" not in t for t in spec_templates[language]):
            raise InputError(f'every {language} template needs a "{{}}" for the class name')
    return ClassPrompts(
        classes,
        {lang: names[lang] for lang in wanted},
        {lang: list(spec_templates[lang]) for lang in wanted},
    )
