"""The periodic evaluation hook exports the model and calls an entry point's main(argv)."""

from __future__ import annotations

import json
import textwrap

import mling.train
from tests.helpers import train_fixtures
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture

FAKE_EVAL = """
import json, sys
from pathlib import Path

def main(argv):
    model = Path(argv[argv.index("--model") + 1])
    record = {"argv": argv, "exported": (model / "config.json").exists()}
    with open(sys.modules[__name__].LOG, "a") as log:
        log.write(json.dumps(record) + "\\n")
    return 3
"""


def test_hook_calls_main_with_the_exported_model(tmp_path, toy_pairs, toy_tokenizer, monkeypatch):
    (tmp_path / "fake_eval.py").write_text(
        textwrap.dedent(FAKE_EVAL) + f"LOG = {str(tmp_path / 'calls.jsonl')!r}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "4", "--eval-every", "2")
    argv += [
        "--eval-module",
        "fake_eval",
        "--eval-args",
        "--model {model} --output {output} --tag 'two words'",
    ]
    assert mling.train.main(argv) == 0
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").open()]
    assert [c["exported"] for c in calls] == [True, True]
    step2 = out / "evals" / "step-00000002"
    assert calls[0]["argv"] == [
        "--model",
        str(step2 / "model"),
        "--output",
        str(step2),
        "--tag",
        "two words",
    ]


def test_missing_evaluation_module_is_skipped(tmp_path, toy_pairs, toy_tokenizer, capsys):
    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path, "--max-steps", "1", "--eval-every", "1")
    assert mling.train.main([*argv, "--eval-module", "no_such_eval_module"]) == 0
    assert "evaluation hook skipped, cannot use no_such_eval_module.main" in capsys.readouterr().err


def test_eval_modules_named_by_their_old_homes_still_resolve(capsys):
    """Recipes and saved recipe.yaml files name `eval.multi30k`; no layer contract sees a name
    imported at run time, so this test imports every mapped module and its main."""
    import importlib

    from mling.common.moved import MOVED_MODULES
    from mling.training.recipe import load_recipe, recipe_from_dict

    for old, new in MOVED_MODULES.items():
        if not old.startswith("eval."):
            continue  # the package's own renames: tests/test_layout.py
        recipe = load_recipe("tiny", {"eval_module": old})
        assert recipe.run.eval_module == new
        assert f"eval_module {old} is deprecated; use {new}" in capsys.readouterr().err
        assert callable(importlib.import_module(new).main)
        # a checkpoint's saved recipe goes through the same door
        assert recipe_from_dict(recipe.to_dict()).run.eval_module == new
    assert load_recipe("tiny", {"eval_module": "my_lab.evals"}).run.eval_module == "my_lab.evals"
    assert capsys.readouterr().err == ""
