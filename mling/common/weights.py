"""Whether the weights in a model folder are whole, told from their headers, before any load.

A safetensors file is 8 bytes of header length, a JSON header naming each tensor's byte range,
then the data: a file cut short (a full disk, a killed copy, an interrupted download) holds
fewer bytes than its header promises. A `pytorch_model.bin` is a zip archive: cut short, it has
lost its central directory. Both are found by reading a few kilobytes, so every model of a run
is checked before the first one loads, and the problem is one line naming the file instead of
a SafetensorError from deep inside `from_pretrained`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

# the weights a Hugging Face model folder may hold, in the order from_pretrained prefers them
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def safetensors_problem(path: Path) -> str | None:
    """Why the safetensors file `path` cannot be loaded, or None when it is whole."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            length = int.from_bytes(file.read(8), "little")
            if size < 8 or 8 + length > size:
                return f"{path.name} is cut short (its header ends past the file's {size} bytes)"
            header = json.loads(file.read(length))
    except (ValueError, UnicodeDecodeError):
        return f"{path.name} has no readable header (not a safetensors file)"
    if not isinstance(header, dict):
        return f"{path.name} has no readable header (not a safetensors file)"
    ends = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and isinstance(offsets[1], int)):
            return f"{path.name} has no readable header (tensor {name!r} has no data_offsets)"
        ends.append(offsets[1])
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        return f"{path.name} is cut short ({size} of {needed} bytes)"
    return None


def pickle_problem(path: Path) -> str | None:
    """Why a torch.save zip archive cannot be loaded, or None when its directory is whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except zipfile.BadZipFile:
        return f"{path.name} is cut short or damaged (not a whole zip archive)"
    return None


def weights_problem(folder: Path) -> str | None:
    """Why the weights of a model folder cannot be loaded (none there, a file cut short, a
    shard its index names missing or cut short), or None when they look whole."""
    for name in WEIGHT_FILES:
        index = folder / f"{name}.index.json"
        if index.is_file():
            try:
                shards = sorted(
                    set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
                )
            except (ValueError, KeyError, TypeError, AttributeError):
                return f"{index.name} is not a weights index (JSON with a weight_map)"
            files = [folder / str(shard) for shard in shards]
        elif (folder / name).is_file():
            files = [folder / name]
        else:
            continue
        for file in files:
            if not file.is_file():
                return f"{file.name} is missing ({index.name} names it)"
            check = safetensors_problem if name.endswith(".safetensors") else pickle_problem
            problem = check(file)
            if problem:
                return problem
        return None
    return f"no weights ({' or '.join(WEIGHT_FILES)})"
