"""Image files for evaluation: checked all at once before any model runs, then decoded as RGB.

A missing, empty or undecodable image is found up front and reported in one line with the
count and the first few names, so a long evaluation never dies at image 4,812.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from mling.common.errors import InputError

SHOWN = 3  # names quoted per problem in an error line


def image_problem(path: Path) -> str | None:
    """None when `path` decodes, else "missing", "empty" or "undecodable".

    JPEGs are decoded at 1/8 scale (PIL draft mode): that reads every byte of the file, so a
    truncated download fails here, at a fraction of the cost of a full decode.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "undecodable"
    if size == 0:
        return "empty"
    try:
        with Image.open(path) as image:
            image.draft("RGB", (32, 32))
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return "undecodable"
    return None


def check_images(paths: Sequence[Path], workers: int = 2, hint: str = "") -> None:
    """Raise one InputError line naming every kind of bad image among `paths`, if any."""
    unique = list(dict.fromkeys(paths))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        problems = list(pool.map(image_problem, unique))
    bad: dict[str, list[Path]] = {}
    for path, problem in zip(unique, problems, strict=True):
        if problem:
            bad.setdefault(problem, []).append(path)
    if not bad:
        return
    parts = []
    for problem in ("missing", "empty", "undecodable"):
        if problem in bad:
            names = ", ".join(path.name for path in bad[problem][:SHOWN])
            more = ", ..." if len(bad[problem]) > SHOWN else ""
            parts.append(f"{len(bad[problem])} {problem} ({names}{more})")
    folder = unique[0].parent if unique else Path()
    total = sum(map(len, bad.values()))
    raise InputError(
        f"{total} of {len(unique)} images under {folder} are unusable: {'; '.join(parts)}"
        + (f"; {hint}" if hint else "")
    )


def load_rgb(path: Path) -> Image.Image:
    """The image as RGB (palette, grey, CMYK and alpha images included)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError(f"{path} cannot be decoded ({error}); replace or remove it") from None
