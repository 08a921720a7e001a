"""The periodic evaluation hook exports the model and calls an entry point's main(argv): the
real evaluators report at every evaluation step, and a failed one is counted."""

from __future__ import annotations

import json
import shutil
import textwrap

import mling.evaluation.multi30k
import mling.train
from mling.training.eval_hook import eval_reports
from tests.helpers import train_fixtures
from tests.helpers.eval_fixtures import write_images, write_multi30k
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
    assert mling.train.main(argv) == 0  # the fake evaluator returns 3: two failed evaluations
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").open()]
    assert [c["exported"] for c in calls] == [True, True]
    step2 = out / "evals" / "step-00000002"
    assert calls[0]["argv"] == [
        "--model",
        str(step2 / "model"),
        "--output",
        str(step2 / "report"),  # the evaluator's own folder, beside the hook's export
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


def test_the_multi30k_evaluator_reports_at_every_step_and_a_failure_is_counted(
    tmp_path, toy_pairs, toy_tokenizer, monkeypatch, capsys
):
    """The real evaluator on a Multi30k tree in the real layout: it claims evals/step-N/report
    beside the hook's evals/step-N/model (it used to refuse evals/step-N as not ours, and every
    evaluation was skipped with exit 0). The second evaluation loses an image before it runs:
    the run goes on, and says so in metrics.jsonl and in its last line."""
    names = write_multi30k(tmp_path / "multi30k")
    write_images(tmp_path / "images", names)
    real_main = mling.evaluation.multi30k.main
    calls = []

    def losing_an_image_before_the_second(argv):
        calls.append(argv)
        if len(calls) == 2:
            (tmp_path / "images" / names[0]).unlink()
        return real_main(argv)

    monkeypatch.setattr(mling.evaluation.multi30k, "main", losing_an_image_before_the_second)
    out = tmp_path / "run"
    # bench_lit.py's evaluation arguments, with the fixture's folders
    evaluation = f"--multi30k {tmp_path / 'multi30k'} --images {tmp_path / 'images'}"
    evaluation += " --model {model} --output {output} --device cpu --no-cache --batch-size 4"
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "4", "--eval-every", "2")
    argv += ["--eval-module", "mling.evaluation.multi30k", "--eval-args", evaluation]
    capsys.readouterr()
    assert mling.train.main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1] == f"train.py: done, 4 steps; 1 of 2 evaluations failed; model in {out / 'model'}"
    )
    assert any("evaluation at step-00000004 failed" in line for line in err)

    reports = eval_reports(out)
    assert list(reports) == [2]  # step 4's evaluator refused its images in one line
    assert reports[2] == out / "evals" / "step-00000002" / "report" / "report.json"
    report = json.loads(reports[2].read_text())
    assert list(report["models"]) == ["step-00000002"]  # named for its step folder
    assert set(report["models"]["step-00000002"]) >= {"en", "de", "fr", "cs"}
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["evals_run"], m["evals_failed"]) for m in metrics[1:]] == [
        (2, 1, 0),
        (3, 1, 0),
        (4, 2, 1),
    ]
    assert "evals_run" not in metrics[0]  # no evaluation before step 2

    # benchmarks/bench_lit.py calls the hook the same way and reads these reports
    from benchmarks import bench_lit

    def train_like_the_test(bench_argv):
        run = bench_argv[bench_argv.index("--output-dir") + 1]
        assert bench_argv[bench_argv.index("--eval-module") + 1] == "mling.evaluation.multi30k"
        assert (
            "--model {model} --output {output}" in bench_argv[bench_argv.index("--eval-args") + 1]
        )
        for step in (2, 4):  # what the hook leaves when both evaluations report
            shutil.copytree(reports[2].parent, f"{run}/evals/step-{step:08d}/report")
        return 0

    monkeypatch.setattr(bench_lit.train, "main", train_like_the_test)
    curve = bench_lit.curve(tmp_path, "lit", [], 4, 2, tmp_path / "bench")
    assert list(curve) == [2, 4] and set(curve[2]) == {"en", "de", "fr", "cs", "mean"}
