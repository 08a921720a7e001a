"""The code a report measured: the commit it ran at and the modules it measures; what changed since.

Every demo and benchmark declares the modules it measures (package paths from the repository
root: `mling/filtering/`, `mling/training/loss.py`) and writes `code_state(MEASURED_MODULES)`
into its report. `changes_since(state)` then says whether a table made from that report still
describes the code: what `git log` and `git diff` show in those modules after the recorded
commit, and what was uncommitted in them when the report was made. Outside a git checkout (an
installed wheel, git missing) the state says so and nothing fails.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout holding `mling/`, when it is one


def _git(root: Path, *args: str) -> str | None:
    """git's stdout in `root`, or None when git is missing or fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def _checkout_note(root: Path) -> str | None:
    """None when `root` is the top of a git checkout, else why it is not one."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        return f"not a git checkout ({root})"
    if Path(top.strip()).resolve() != root.resolve():  # e.g. site-packages inside a clone
        return f"not a git checkout ({root} is inside {top.strip()})"
    return None


def _lines(text: str | None) -> list[str]:
    return [line for line in (text or "").splitlines() if line.strip()]


def _uncommitted(root: Path, modules: Sequence[str]) -> list[str]:
    """Paths under `modules` that differ from HEAD: changed, staged, or new and not ignored."""
    changed = _lines(_git(root, "diff", "--name-only", "HEAD", "--", *modules))
    new = _lines(_git(root, "ls-files", "--others", "--exclude-standard", "--", *modules))
    return sorted(set(changed) | set(new))


def code_state(modules: Sequence[str], root: Path = ROOT) -> dict:
    """What a report records about the code it measured: {"commit": sha or None, "dirty":
    whether anything in the tree differed from it, "dirty_paths": the measured modules' paths
    that did, "modules": the package paths measured}, and "git": why there is no commit."""
    state: dict = {"modules": list(modules), "commit": None, "dirty": None, "dirty_paths": []}
    note = _checkout_note(root)
    head = None if note else _git(root, "rev-parse", "HEAD")
    if head is None:
        state["git"] = note or f"no commit yet ({root})"
        return state
    state["commit"] = head.strip()
    state["dirty"] = bool(_lines(_git(root, "status", "--porcelain")))
    state["dirty_paths"] = _uncommitted(root, modules)
    return state


def _short(paths: Sequence[str], most: int = 4) -> str:
    shown = ", ".join(paths[:most])
    return shown + (f" and {len(paths) - most} more" if len(paths) > most else "")


def changes_since(state: Mapping, root: Path = ROOT) -> str | None:
    """None when nothing in the state's modules changed after its commit; else what did, in
    one line: the commits since (git log), uncommitted changes now (git diff), and what was
    uncommitted when the report was made. A state without a commit is never fresh."""
    commit, modules = state.get("commit"), list(state.get("modules") or [])
    if not commit:
        return f"no commit recorded{': ' + state['git'] if state.get('git') else ''}"
    if not modules:
        return "no measured modules recorded"
    note = _checkout_note(root)
    if note:
        return f"cannot compare: {note}"
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}") is None:
        return f"commit {commit[:7]} is not in this repository"
    parts = []
    log = _git(root, "log", "--format=%x00%h", "--name-only", f"{commit}..HEAD", "--", *modules)
    commits = [entry.split("\n", 1) for entry in (log or "").split("\0") if entry.strip()]
    if commits:
        touched = sorted({p for _, paths in commits for p in _lines(paths)})
        parts.append(
            f"{len(commits)} commit(s) since {commit[:7]} ({commits[0][0].strip()} newest) "
            f"changed {_short(touched)}"
        )
    now = _uncommitted(root, modules)
    if now:
        parts.append(f"uncommitted now: {_short(now)}")
    then = [p for p in state.get("dirty_paths") or [] if any(_under(p, m) for m in modules)]
    if then:
        parts.append(f"uncommitted when measured: {_short(then)}")
    return "; ".join(parts) or None


def _under(path: str, module: str) -> bool:
    return path == module or (module.endswith("/") and path.startswith(module))
