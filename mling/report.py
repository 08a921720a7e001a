"""Reports as every part of the toolkit writes them: JSON for machines, Markdown for people,
PNG where a person would rather look than read. Files appear whole or not at all."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON: they become null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_atomic(path: str | Path, payload: bytes) -> Path:
    """Write bytes to a temp file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        # mkstemp creates 0600 files; a report is for everyone the umask allows.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_report(
    out_dir: str | Path, stem: str, data: dict, markdown: str, figure: Any = None
) -> dict[str, Path]:
    """Write `stem.json`, `stem.md` and, given a matplotlib figure, `stem.png` into out_dir.

    Returns {"json": path, "md": path[, "png": path]}. The figure is closed after saving.
    """
    out_dir = Path(out_dir)
    text = json.dumps(_finite(data), ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False)
    paths = {
        "json": write_atomic(out_dir / f"{stem}.json", (text + "\n").encode("utf-8")),
        "md": write_atomic(out_dir / f"{stem}.md", markdown.rstrip("\n").encode("utf-8") + b"\n"),
    }
    if figure is not None:
        import io as _io

        import matplotlib.pyplot as plt

        buffer = _io.BytesIO()
        figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        plt.close(figure)
        paths["png"] = write_atomic(out_dir / f"{stem}.png", buffer.getvalue())
    return paths


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; floats shown with one decimal, None as an em dash."""

    def cell(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:.1f}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, headers)) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines.extend("| " + " | ".join(map(cell, row)) + " |" for row in rows)
    return "\n".join(lines)


def new_figure(width: float = 8.0, height: float = 4.5) -> tuple[Any, Any]:
    """A matplotlib (figure, axes) on the Agg backend, which needs no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))
