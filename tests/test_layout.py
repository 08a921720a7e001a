"""The layout: the four packages import, and no module shadows a library when run as a script.

`python data/filter.py` puts `data/` first on sys.path, so a `data/io.py` or `data/datasets.py`
would replace the real module for every library that filter.py imports.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["mling", "tokenizer_training", "data", "eval"]


def _top_level_names_of_installed_distributions() -> set[str]:
    names = set()
    for dist in importlib.metadata.distributions():
        top_level = dist.read_text("top_level.txt")
        if top_level:
            names.update(top_level.split())
        for file in dist.files or ():
            parts = Path(file).parts
            if parts and not parts[0].endswith((".dist-info", ".data")) and parts[0] != "..":
                names.add(Path(parts[0]).stem if parts[0].endswith(".py") else parts[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports(package):
    assert importlib.import_module(package).__file__


def test_no_module_shadows_the_standard_library_or_a_dependency():
    taken = set(sys.stdlib_module_names) | _top_level_names_of_installed_distributions()
    taken -= set(PACKAGES)  # our own packages are the installed names themselves
    clashes = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path.stem in taken and path.stem != "__init__"
    ]
    assert clashes == [], f"rename these modules, they shadow libraries: {clashes}"
