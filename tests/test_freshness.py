"""Fresh numbers: the commit a report records, and which generated blocks the code has moved
past since, on a tiny git repository made here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchmarks import update_docs
from mling.common.provenance import changes_since, code_state

MEASURED = ["mling/filtering/", "mling/training/loss.py"]


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


def write(repo: Path, path: str, text: str) -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text, encoding="utf-8")


def commit(repo: Path, message: str, files: dict[str, str] | None = None) -> str:
    for path, text in (files or {}).items():
        write(repo, path, text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "--short", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo, ".gitignore", "out/\n")
    commit(repo, "first", {"mling/filtering/reasons.py": "K = 1\n", "mling/vocab/wordpiece.py": ""})
    return repo


def test_outside_a_git_checkout_the_report_says_so_and_nothing_fails(tmp_path):
    state = code_state(MEASURED, root=tmp_path)
    assert state["commit"] is None and state["modules"] == MEASURED
    assert state["git"].startswith("not a git checkout")
    assert changes_since(state, root=tmp_path).startswith("no commit recorded: not a git")


def test_a_folder_inside_a_checkout_is_not_one(repo):
    (repo / "site-packages").mkdir()
    state = code_state(MEASURED, root=repo / "site-packages")
    assert state["commit"] is None and "is inside" in state["git"]


def test_only_changes_to_the_measured_modules_make_a_report_stale(repo):
    state = code_state(MEASURED, root=repo)
    assert state["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert (state["dirty"], state["dirty_paths"]) == (False, [])
    assert changes_since(state, repo) is None
    commit(repo, "vocab only", {"mling/vocab/wordpiece.py": "x = 2\n"})
    assert changes_since(state, repo) is None  # not measured
    newest = commit(repo, "the loss", {"mling/training/loss.py": "T = 0.1\n"})
    change = changes_since(state, repo)
    assert change == f"1 commit(s) since {state['commit'][:7]} ({newest} newest) changed " + (
        "mling/training/loss.py"
    )


def test_uncommitted_changes_count_now_and_when_measured(repo):
    write(repo, "mling/filtering/reasons.py", "K = 2\n")  # measured while uncommitted
    state = code_state(MEASURED, root=repo)
    assert state["dirty"] is True and state["dirty_paths"] == ["mling/filtering/reasons.py"]
    commit(repo, "K = 2")
    change = changes_since(state, repo)
    assert "uncommitted when measured: mling/filtering/reasons.py" in change
    assert "1 commit(s) since" in change
    write(repo, "mling/filtering/new.py", "")  # untracked, not ignored
    fresh = code_state(MEASURED, root=repo)
    assert "uncommitted now: mling/filtering/new.py" in changes_since(fresh, repo)


def test_a_commit_this_repository_lacks_is_named(repo):
    state = code_state(MEASURED, root=repo) | {"commit": "0" * 40}
    assert changes_since(state, repo) == "commit 0000000 is not in this repository"


def page(block_source: str, heading: str, body: str = "old table") -> str:
    return (
        f"# Page\n\n## {heading}\n\n```bash\n# not a heading\n```\n\n"
        f"<!-- generated from {block_source} by `make demo`; do not edit -->\n"
        f"{body}\n<!-- end generated -->\n"
    )


def test_check_lists_each_stale_block_with_its_page_report_and_change(repo, capsys):
    write(repo, "README.md", page("out/demo/summary.md", "What make demo shows"))
    docs = page("out/bench/bench.md", "Filter") + page("out/lit/bench_lit.md", "LiT")
    docs += page("out/gone/bench.md", "Vocabulary")
    write(repo, "docs/benchmarks.md", docs)
    commit(repo, "pages")
    # the demo's summary is recorded by the run's report.json beside it; the filter's report
    # by its own JSON; the LiT report records no commit; the vocabulary report is missing
    write(repo, "out/demo/summary.md", "# make demo\n\ntable")
    demo = {"provenance": code_state(["mling/training/loss.py"], root=repo)}
    write(repo, "out/demo/report.json", json.dumps(demo))
    bench = {"provenance": code_state(["mling/filtering/"], root=repo)}
    write(repo, "out/bench/bench.json", json.dumps(bench))
    write(repo, "out/lit/bench_lit.json", json.dumps({"rows": []}))
    newest = commit(repo, "a filter change", {"mling/filtering/reasons.py": "K = 3\n"})

    lines, blocks = update_docs.stale_blocks(repo)
    assert blocks == 4
    assert lines == [
        "docs/benchmarks.md § Filter (out/bench/bench.json): 1 commit(s) since "
        f"{bench['provenance']['commit'][:7]} ({newest} newest) changed mling/filtering/reasons.py",
        "docs/benchmarks.md § LiT (out/lit/bench_lit.json): no commit recorded",
        "docs/benchmarks.md § Vocabulary (out/gone/bench.md): no report, so no commit; run "
        "`make demo`",
    ]  # the README's block measured the loss, which no commit since has changed
    assert update_docs.check(repo) == 0  # a list, never a failure
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "update_docs.py --check: 3 of 4 generated blocks are stale:"
    assert out[1:] == [f"  {line}" for line in lines]


def test_an_ablation_is_stale_when_any_of_its_rows_is(repo):
    fresh = code_state(MEASURED, root=repo) | {"label": "row baseline"}
    unrecorded = {"label": "row captions-4", "modules": MEASURED}
    assert update_docs.staleness([fresh], repo) is None
    assert update_docs.staleness([fresh, unrecorded], repo) == "row captions-4: no commit recorded"
    assert update_docs.staleness(None, repo) == "no commit recorded"
