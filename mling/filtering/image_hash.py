"""Image identity and near-duplicates of evaluation images: sha256 of bytes and 64-bit pHash.

An evaluation set is what `--eval-images DIR` and `--eval-hashes FILE` describe: the pHash and
sha256 of every image under the directories, plus the lines of the hash files, each one of
  16 hex digits    a pHash, as `str(imagehash.phash(image))` writes it
  64 hex digits    the sha256 of an image file's bytes
  http(s)://...    an image URL (for pairs without bytes only exact matches are possible)
Blank lines and lines starting with `#` are skipped.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mling.common.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
_PHASH = re.compile(r"[0-9a-fA-F]{16}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class EvalSetError(InputError):
    """An evaluation image or hash list that cannot be used, named in one line."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def phash_bytes(data: bytes) -> int | None:
    """64-bit pHash (imagehash's, as an unsigned int) of encoded image bytes; None if undecodable.

    JPEGs are decoded at reduced scale (at least 256 px a side) before the 32x32 resize pHash
    does anyway: 5-20x faster, and the hash moves by a bit or two at most.
    """
    import imagehash
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (256, 256))
            return int(str(imagehash.phash(image)), 16)
    except Exception:  # any undecodable payload: PIL raises many types
        return None


def within_radius(hashes: np.ndarray, eval_hashes: np.ndarray, radius: int) -> np.ndarray:
    """(B,) bool: is hash b within Hamming distance `radius` of any of the (E,) eval hashes.

    Both arrays are uint64. Works in chunks of eval hashes so memory stays B x 4096 bytes.
    """
    near = np.zeros(len(hashes), dtype=bool)
    if len(hashes) == 0 or len(eval_hashes) == 0:
        return near
    for start in range(0, len(eval_hashes), 4096):
        chunk = eval_hashes[start : start + 4096]
        distances = np.bitwise_count(hashes[:, None] ^ chunk[None, :])
        near |= (distances <= radius).any(axis=1)
    return near


@dataclass
class EvalSet:
    """Evaluation images to keep out of the training pairs."""

    phashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # (E,)
    sha256: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.phashes) + len(self.sha256) + len(self.urls)

    def near(
        self, phashes: Sequence[int | None], sha256: Sequence[str | None], radius: int
    ) -> np.ndarray:
        """(B,) bool for B images given by pHash (None: no bytes) and sha256 (None likewise)."""
        known = np.array([h is not None for h in phashes], dtype=bool)
        values = np.array([h or 0 for h in phashes], dtype=np.uint64)
        near = np.zeros(len(phashes), dtype=bool)
        near[known] = within_radius(values[known], self.phashes, radius)
        near |= np.array([s is not None and s in self.sha256 for s in sha256], dtype=bool)
        return near


def load_eval_set(
    image_dirs: Iterable[str | Path] = (), hash_files: Iterable[str | Path] = ()
) -> EvalSet:
    """Hash every image under `image_dirs` and read every `hash_files` line (see module doc)."""
    phashes: list[int] = []
    eval_set = EvalSet()
    for directory in map(Path, image_dirs):
        if not directory.is_dir():
            raise EvalSetError(f"--eval-images {directory}: not a directory of images")
        files = [p for p in sorted(directory.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise EvalSetError(f"--eval-images {directory}: no {'/'.join(IMAGE_SUFFIXES)} files")
        for path in files:
            data = path.read_bytes()
            eval_set.sha256.add(sha256_hex(data))
            value = phash_bytes(data)
            if value is not None:
                phashes.append(value)
    for path in map(Path, hash_files):
        if not path.is_file():
            raise EvalSetError(f"--eval-hashes {path}: file not found")
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if _PHASH.fullmatch(line):
                phashes.append(int(line, 16))
            elif _SHA256.fullmatch(line):
                eval_set.sha256.add(line.lower())
            elif line.startswith(("http://", "https://")):
                eval_set.urls.add(line)
            else:
                raise EvalSetError(
                    f"--eval-hashes {path}:{number}: write a 16-hex pHash, a 64-hex sha256 "
                    f"or an http(s) URL, not {line[:40]!r}"
                )
    eval_set.phashes = np.array(phashes, dtype=np.uint64)
    return eval_set
