"""Emoji names and keywords in every CLDR locale, read from the two annotation tarballs.

`cldr-annotations-full` names single emoji (`annotations/LOCALE/annotations.json`);
`cldr-annotations-derived-full` names sequences built from them: skin tones, flags, keycaps,
families (`annotationsDerived/LOCALE/annotations.json`). Each entry has `tts` (the name a
screen reader says, one) and `default` (keywords). Only entries with a name are kept.

A regional locale's file (`en-GB`, `es-419`, `zh-Hant-HK`) holds only what differs from its
parent's, so by default only locales without a region or variant are languages of the set;
a script variant (`sr-Latn`, `zh-Hant`, `hi-Latn`, `ff-Adlm`) is a full set of its own.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from mling.common.errors import InputError
from mling.common.text import nfc


@dataclass(frozen=True)
class Annotation:
    name: str  # the tts name, NFC
    keywords: tuple[str, ...]  # the `default` keywords, NFC, in CLDR's order, the name left out


def emoji_key(text: str) -> str:
    """An emoji's id across sources: its code points in lower-case hex (4 digits at least)
    joined by "-", without U+FE0F (emoji presentation), which sources add or leave out:
    "❤️" -> "2764", "#️⃣" -> "0023-20e3"."""
    return "-".join(f"{ord(c):04x}" for c in text if c != "\ufe0f")


def _entries(tar: tarfile.TarFile, member: tarfile.TarInfo, top: str) -> dict:
    try:
        data = json.load(tar.extractfile(member))
        return data[top].get("annotations", {})
    except (ValueError, KeyError, AttributeError) as error:
        raise InputError(f"{member.name} is not a CLDR annotations file ({error})") from None


def read_annotations(paths: list[Path]) -> dict[str, dict[str, Annotation]]:
    """locale -> emoji key -> Annotation, from the annotation tarballs (full, then derived)."""
    by_locale: dict[str, dict[str, Annotation]] = {}
    for path in paths:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                # package/annotations[Derived]/LOCALE/annotations.json
                parts = member.name.split("/")
                if len(parts) != 4 or parts[3] != "annotations.json" or not member.isfile():
                    continue
                top, locale = parts[1], parts[2]
                if top not in ("annotations", "annotationsDerived") or locale == "und":
                    continue
                found = by_locale.setdefault(locale, {})
                for emoji, entry in _entries(tar, member, top).items():
                    if not entry.get("tts"):
                        continue
                    name = nfc(entry["tts"][0].strip())
                    keywords = (nfc(k.strip()) for k in entry.get("default", ()))
                    kept = tuple(dict.fromkeys(k for k in keywords if k and k != name))
                    found.setdefault(emoji_key(emoji), Annotation(name, kept))
    if not by_locale:
        raise InputError(f"no CLDR annotations in {', '.join(map(str, paths))}")
    return by_locale


def is_regional(locale: str) -> bool:
    """True for a locale with a region or variant subtag: en-GB, es-419, ca-ES-valencia."""
    for subtag in locale.split("-")[1:]:
        script = len(subtag) == 4 and subtag.isalpha()
        if not script:
            return True
    return False


def script_of(locale: str) -> str:
    """The locale's ISO 15924 script by CLDR's likely subtags (ja -> Jpan, sr-Latn -> Latn)."""
    import icu

    likely = icu.Locale(locale.replace("-", "_"))
    likely.addLikelySubtags()
    return likely.getScript() or "Zyyy"


def caption_of(annotation: Annotation, keywords: bool) -> str:
    """The name, or the name and its keywords: "cat face (cat, face, pet)"."""
    if not keywords or not annotation.keywords:
        return annotation.name
    return f"{annotation.name} ({', '.join(annotation.keywords)})"
