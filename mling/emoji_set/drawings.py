"""Emoji drawings: SVGs read from the drawing sets' tarballs, rasterized to PNG by resvg.

Two layouts are read. OpenMoji ships one SVG per emoji, `package/color/svg/1F600.svg` (the
name is the code points; non-Unicode extras sit in the private-use area and find no name).
Iconify's JSON sets (`@iconify-json/*`) ship one `icons.json` of SVG bodies and a
`chars.json` from code points to icon names; where `chars.json` is empty (EmojiOne, Firefox,
Streamline) an icon is found by its name, the CLDR English name as a slug ("grinning-face",
or "grinningface"). Both come out as emoji key -> Drawing.

resvg (the `resvg-py` wheel) draws the SVG: a self-contained Rust library, no system cairo.
The drawing is composed on white and stored as RGB PNG, the colour the training transforms
and the evaluators read it in (a transparent pixel would otherwise turn black).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from mling.common.errors import InputError
from mling.emoji_set.cldr import emoji_key

OPENMOJI_DIR = "package/color/svg/"


class Drawing(NamedTuple):
    emoji: str  # the emoji as the drawing set spells it (U+FE0F where it writes one)
    svg: str  # the SVG document


def _text_of_hex(hexcode: str) -> str:
    """A file name's code points as text: "1F468-200D-2764-FE0F" -> "👨‍❤️"."""
    return "".join(chr(int(part, 16)) for part in hexcode.split("-"))


def name_slugs(name: str) -> tuple[str, str]:
    """An English name as Iconify sets spell their icon names: "Japanese “here” button" ->
    ("japanese-here-button", "japaneseherebutton")."""
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"[’'‘“”]", "", name.lower())).strip("-")
    return slug, slug.replace("-", "")


def openmoji_svgs(path: Path, english: dict[str, str] | None = None) -> dict[str, Drawing]:
    """emoji key -> Drawing, from OpenMoji's tarball (the colour set); `english` is unused."""
    found: dict[str, Drawing] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            name = member.name
            if not (name.startswith(OPENMOJI_DIR) and name.endswith(".svg") and member.isfile()):
                continue
            try:
                text = _text_of_hex(name[len(OPENMOJI_DIR) : -len(".svg")])
            except ValueError:
                continue  # not a code-point name
            # with and without FE0F may both exist: the first in the tarball wins, every run
            svg = tar.extractfile(member).read().decode("utf-8")
            found.setdefault(emoji_key(text), Drawing(text, svg))
    if not found:
        raise InputError(f"{path} has no {OPENMOJI_DIR}*.svg; is it the openmoji package?")
    return found


def iconify_svgs(path: Path, english: dict[str, str] | None = None) -> dict[str, Drawing]:
    """emoji key -> Drawing, from an Iconify JSON set's tarball (`icons.json`, `chars.json`).
    An emoji that `chars.json` does not map is looked up by its `english` name (key -> CLDR
    English name), among the icons and the aliases that only rename one (no flip, no turn)."""
    with tarfile.open(path, "r:gz") as tar:
        try:
            icons = json.load(tar.extractfile("package/icons.json"))
            chars = json.load(tar.extractfile("package/chars.json"))
        except (KeyError, ValueError) as error:
            raise InputError(f"{path} is not an Iconify JSON set ({error})") from None
    width, height = icons.get("width", 16), icons.get("height", 16)
    bodies = dict(icons["icons"])
    for alias, target in icons.get("aliases", {}).items():
        if set(target) == {"parent"} and target["parent"] in icons["icons"]:
            bodies.setdefault(alias, icons["icons"][target["parent"]])

    def drawing(text: str, icon: dict) -> Drawing:
        w, h = icon.get("width", width), icon.get("height", height)
        box = f"{icon.get('left', 0)} {icon.get('top', 0)} {w} {h}"
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="{box}">{icon["body"]}</svg>'
        )
        return Drawing(text, svg)

    found: dict[str, Drawing] = {}
    for hexcode, name in sorted(chars.items()):
        if name in bodies:
            text = _text_of_hex(hexcode)
            found.setdefault(emoji_key(text), drawing(text, bodies[name]))
    for key, name in sorted((english or {}).items()):
        if key in found:
            continue
        icon_name = next((slug for slug in name_slugs(name) if slug in bodies), None)
        if icon_name is not None:
            text = _text_of_hex(key)
            found[key] = drawing(text, bodies[icon_name])
    return found


READERS = {"openmoji": openmoji_svgs, "iconify": iconify_svgs}


def rasterize(svg: str, px: int) -> bytes:
    """PNG bytes of the SVG drawn into a `px` x `px` RGB square, on white."""
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=svg, width=px, height=px)
    drawn = Image.open(io.BytesIO(bytes(png)))
    if drawn.size != (px, px):  # a drawing that is not square keeps its aspect, centred
        drawn.thumbnail((px, px))
    canvas = Image.new("RGB", (px, px), "white")
    rgba = drawn.convert("RGBA")
    canvas.paste(rgba, ((px - rgba.width) // 2, (px - rgba.height) // 2), rgba)
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=True)
    return out.getvalue()
