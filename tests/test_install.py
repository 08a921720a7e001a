"""The wheel as a user installs it: `mling` alone in site-packages, beside the user's own code.

The wheel is built without build isolation (no network) and installed with `--no-deps` into a
folder of its own, apart from the editable install; the dependencies come from this
environment. A user's project with its own `data/` and `eval/` must keep importing them, both
as namespace folders (no `__init__.py`, the common case) and as regular packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers.user_project import user_project

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
NOT_SOURCES = (".git", ".venv", "build", "*.egg-info", "demo-output", "bench-output", "__pycache__")


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the built wheel, the folder it is installed into)."""
    root = tmp_path_factory.mktemp("wheel")
    # A copy of the sources: the build writes build/ and *.egg-info where it runs.
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"]
        + ["--no-index", "--wheel-dir", str(root / "dist"), str(source)]
    )
    (wheel,) = (root / "dist").glob("mling_align-*.whl")
    target = root / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet"]
         + ["--target", str(target), str(wheel)])  # fmt: skip
    return wheel, target


def _environment(site: Path, project: Path | None = None) -> dict[str, str]:
    """The installed wheel first on the path, as site-packages is; never the repository."""
    paths = [str(site)] + ([str(project)] if project else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONNOUSERSITE": "1"}


USER_CODE = (
    "import data.loaders, eval.metrics, mling.training.loader, mling.evaluation.multi30k; "
    "assert mling.__file__.startswith({site!r}), mling.__file__; "
    "print(data.loaders.VALUE, eval.metrics.VALUE)"
)


def test_the_wheel_installs_mling_alone(installed):
    wheel, site = installed
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert archive.read(top_level).decode().split() == ["mling"]
        assert "mling/configs/tiny.yaml" in names  # presets travel with the package
    roots = {p.name for p in site.iterdir() if not p.name.endswith(".dist-info")} - {"bin"}
    assert roots == {"mling"}


@pytest.mark.parametrize("namespace", [True, False], ids=["namespace-folders", "packages"])
def test_a_users_data_and_eval_keep_working_beside_the_wheel(installed, tmp_path, namespace):
    _, site = installed
    project = user_project(tmp_path / "project", namespace)
    code = USER_CODE.format(site=str(site))
    # the project's root after the installed packages, as a .pth file or an installed project
    # puts it, and run from somewhere else
    elsewhere = _run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_environment(site, project)
    ).stdout
    # `python -c` in the project's root: the root comes first
    inside = _run([sys.executable, "-c", code], cwd=project, env=_environment(site)).stdout
    assert elsewhere.split() == inside.split() == ["LOADED", "MEASURED"]


def test_every_console_script_answers_help(installed, tmp_path):
    import tomllib

    _, site = installed
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert len(scripts) >= 8
    for name in scripts:
        script = site / "bin" / name
        assert script.is_file(), name
        done = _run([sys.executable, str(script), "--help"], cwd=tmp_path, env=_environment(site))
        assert "usage:" in done.stdout, name
