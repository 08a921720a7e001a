"""Reports as every part of the toolkit writes them: JSON for machines, Markdown for people,
PNG where a person would rather look than read. Files appear whole or not at all."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mling.common.atomic import write_atomic


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON: they become null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def figure_bytes(figure: Any, tight: bool = True) -> bytes:
    """A matplotlib figure as the PNG every report writes; the figure is closed after. `tight`
    crops to what is drawn, at the cost of drawing twice: a figure laid out already
    (`tight_layout`) need not."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight" if tight else None)
    plt.close(figure)
    return buffer.getvalue()


def write_report(
    out_dir: str | Path, stem: str, data: dict, markdown: str, figure: Any = None
) -> dict[str, Path]:
    """Write `stem.json`, `stem.md` and, given a matplotlib figure (or its PNG bytes from
    `figure_bytes`), `stem.png` into out_dir.

    Returns {"json": path, "md": path[, "png": path]}. The figure is closed after saving.
    """
    out_dir = Path(out_dir)
    text = json.dumps(_finite(data), ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False)
    paths = {
        "json": write_atomic(out_dir / f"{stem}.json", (text + "\n").encode("utf-8")),
        "md": write_atomic(out_dir / f"{stem}.md", markdown.rstrip("\n").encode("utf-8") + b"\n"),
    }
    if figure is not None:
        png = figure if isinstance(figure, bytes) else figure_bytes(figure)
        paths["png"] = write_atomic(out_dir / f"{stem}.png", png)
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
