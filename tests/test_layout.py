"""The layout: one installed package, `mling`; the folders people know hold only its doors.

`python data/filter.py` puts `data/` first on sys.path and `accelerate launch mling/train.py`
puts `mling/`, so no door script and no top-level name inside `mling/` may be named like a
standard-library or dependency module: it would replace the real one for every library.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.user_project import user_project

ROOT = Path(__file__).resolve().parent.parent
PARTS = [
    "common",
    "pairs",
    "vocab",
    "filtering",
    "synthetic",
    "emoji_set",
    "training",
    "evaluation",
]
# door script -> the module whose main it calls; the README names these commands.
DOORS = {
    "tokenizer_training/build_vocab.py": "mling.vocab.build_vocab",
    "data/filter.py": "mling.filtering.pipeline",
    "data/synthetic.py": "mling.synthetic.generate",
    "data/emoji_set.py": "mling.emoji_set.build",
    "eval/multi30k.py": "mling.evaluation.multi30k",
    "eval/retrieval_set.py": "mling.evaluation.retrieval_set",
    "eval/zero_shot.py": "mling.evaluation.zero_shot",
}
ENTRY_MODULES = ["mling/train.py", "mling/export.py", "mling/demo.py"]


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


@pytest.mark.parametrize("part", PARTS)
def test_every_part_imports(part):
    assert importlib.import_module(f"mling.{part}").__file__


def test_no_name_on_a_script_path_shadows_a_library():
    taken = set(sys.stdlib_module_names) | _top_level_names_of_installed_distributions()
    taken.discard("mling")
    on_script_paths = [p.stem for p in (ROOT / "mling").iterdir() if p.suffix == ".py"]
    on_script_paths += [p.name for p in (ROOT / "mling").iterdir() if (p / "__init__.py").exists()]
    on_script_paths += [Path(door).stem for door in DOORS]
    clashes = sorted(set(on_script_paths) & taken - {"__init__"})
    assert clashes == [], f"rename these, they shadow libraries: {clashes}"


def test_the_folders_people_know_hold_only_doors_and_docs():
    for folder in ("tokenizer_training", "data", "eval"):
        assert not (ROOT / folder / "__init__.py").exists(), f"{folder}/ must not be a package"
        scripts = {str(p.relative_to(ROOT)) for p in (ROOT / folder).glob("*.py")}
        assert scripts <= set(DOORS), f"library code belongs in mling/: {scripts - set(DOORS)}"


@pytest.mark.parametrize("door", sorted(DOORS))
def test_a_door_is_a_few_lines_that_call_the_package(door):
    tree = ast.parse((ROOT / door).read_text(encoding="utf-8"))
    imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert [(node.module, [a.name for a in node.names]) for node in imports] == [
        (DOORS[door], ["main"])
    ]
    assert len(tree.body) <= 3  # docstring, the import, the __main__ guard


def test_no_module_loads_another_file_by_path():
    patterns = ("spec_from_file_location", "sys.path.insert", "sys.path.append")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("mling", "benchmarks", "tests", "data", "eval", "tokenizer_training")
        for path in (ROOT / folder).rglob("*.py")
        if path != Path(__file__).resolve()
        and any(pattern in path.read_text(encoding="utf-8") for pattern in patterns)
    ]
    assert offenders == []


@pytest.mark.parametrize("door", ["data/filter.py", "eval/multi30k.py"])
def test_doors_run_from_a_folder_with_the_users_own_data_and_eval(tmp_path, door):
    project = user_project(tmp_path / "project", namespace=False)
    done = subprocess.run(
        [sys.executable, str(ROOT / door), "--help"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(project)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_the_architecture_page_lists_every_file_once():
    """docs/architecture.md's file tree is written by hand: it must name exactly the files on
    disk, each once, so that it never describes a file that moved or misses a new one."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = page.split("## The file tree")[1].split("```")[1]
    listed = [line.split()[0] for line in block.splitlines() if line.strip()]
    on_disk = sorted(
        str(path.relative_to(ROOT))
        for folder in ("mling", "benchmarks", "tests", "data", "eval", "tokenizer_training")
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    )
    python_listed = [path for path in listed if path.endswith(".py")]
    assert sorted(set(python_listed)) == on_disk
    assert len(python_listed) == len(set(python_listed))


def test_no_two_modules_of_the_package_share_a_file_name():
    """A traceback or a search for `export.py` lands in one place."""
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / "mling").rglob("*.py")):
        if path.name != "__init__.py":
            seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}


def test_moved_modules_load_by_their_old_names_with_one_line(tmp_path):
    """`import OLD` is the new module itself (one class, one registry), and `python -m OLD`
    runs the new module's main; each says once where the module lives now."""
    from mling.common.moved import MOVED_MODULES

    package_moves = {old: new for old, new in MOVED_MODULES.items() if old.startswith("mling.")}
    assert package_moves
    code = (
        "import importlib, sys\n"
        f"for old, new in {package_moves!r}.items():\n"
        "    assert importlib.import_module(old) is importlib.import_module(new), old\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    notices = done.stderr.splitlines()
    assert notices == [
        f"mling: module {old} is deprecated; use {new}" for old, new in package_moves.items()
    ]
    ran = subprocess.run(
        [sys.executable, "-m", "mling.filtering.filter", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert ran.returncode == 0 and "--input" in ran.stdout
    assert ran.stderr.splitlines() == [
        "mling: module mling.filtering.filter is deprecated; use mling.filtering.pipeline"
    ]
