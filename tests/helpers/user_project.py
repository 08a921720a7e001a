"""A user's own project beside ours: its `data/` and `eval/`, the most common folder names."""

from __future__ import annotations

from pathlib import Path


def user_project(root: Path, namespace: bool) -> Path:
    """`root/data/loaders.py` (VALUE "LOADED") and `root/eval/metrics.py` (VALUE "MEASURED"), as
    namespace folders (no `__init__.py`, the common case) or as regular packages."""
    for package, module, value in (("data", "loaders", "LOADED"), ("eval", "metrics", "MEASURED")):
        (root / package).mkdir(parents=True)
        if not namespace:
            (root / package / "__init__.py").write_text("")
        (root / package / f"{module}.py").write_text(f"VALUE = {value!r}\n")
    return root
