"""Modules that moved: their old names keep working for one release, with a one-line notice.

Users and saved recipes name modules: `python -m mling.filtering.filter`, `from
mling.evaluation.retrieval import retrieval_metrics`, `eval_module: eval.multi30k` in a
checkpoint's recipe.yaml. `MOVED_MODULES` maps each old name to its new one, and an import hook
(installed by `mling/__init__.py`) makes `import OLD` and `python -m OLD` load the new module
under the old name after the notice, so a traceback still names the one file that holds the code.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from mling.common.cli import deprecation_notice

# old -> new. Keep an entry for one release after the move.
MOVED_MODULES = {
    # the evaluation entry points moved into the package (their door scripts stayed in eval/)
    "eval.multi30k": "mling.evaluation.multi30k",
    "eval.retrieval_set": "mling.evaluation.retrieval_set",
    "eval.zero_shot": "mling.evaluation.zero_shot",
    # one name, one module: no two modules of the package share a file name
    "mling.training.export": "mling.training.model_export",
    "mling.vocab.export": "mling.vocab.tokenizer_dir",
    "mling.synthetic.corpus": "mling.synthetic.row_plan",
    "mling.vocab.corpus": "mling.vocab.corpus_reader",
    "mling.filtering.filter": "mling.filtering.pipeline",
    "mling.filtering.filters": "mling.filtering.reasons",
    "mling.evaluation.retrieval": "mling.evaluation.recall",
    "mling.evaluation.retrieval_eval": "mling.evaluation.score_models",
}


def current_module(name: str, prog: str, what: str = "") -> str:
    """A module name -> where it lives now; one line on stderr when it moved."""
    if name in MOVED_MODULES:
        deprecation_notice(prog, f"{what}{name}", MOVED_MODULES[name])
        return MOVED_MODULES[name]
    return name


class _Alias(importlib.abc.Loader):
    """Loads an old name as the new module: the same module object for `import`, the new
    file's code for `python -m` (runpy asks the loader for code)."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module) -> None:
        pass  # already executed under its new name

    def get_code(self, fullname):
        spec = importlib.util.find_spec(self.new)
        return spec.loader.get_code(self.new)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED_MODULES or not fullname.startswith("mling."):
            return None  # eval.* names a folder of door scripts, not a module to alias
        new = current_module(fullname, "mling", "module ")
        spec = importlib.util.find_spec(new)
        return importlib.util.spec_from_loader(fullname, _Alias(new), origin=spec.origin)


def install() -> None:
    """Put the hook on sys.meta_path once (after the standard finders: a module that exists
    under a moved name, e.g. a user's own, still wins)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
