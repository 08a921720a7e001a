"""The periodic evaluation hook: export the model, then call an evaluation entry point on it.

Every entry point of the toolkit is `main(argv) -> int`, so the hook needs only the module
name and its arguments, e.g. `--eval-every 5000 --eval-module mling.evaluation.multi30k --eval-args
"--multi30k DATA --images IMAGES --model {model} --output {output}"`.

Each evaluation has its folder, OUTPUT_DIR/evals/step-N/, holding two that are each written by
one owner: `model/`, exported by the hook (`{model}`), and `report/`, the evaluator's `--output`
(`{output}`), which it claims and fills as it would anywhere else. A failed evaluation (an exit
code other than 0, a module that cannot be imported, an exception) does not stop training: it
is said in one line, counted in metrics.jsonl and in the run's last line.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from pathlib import Path

from mling.training.checkpoint import rng_state, set_rng_state
from mling.training.model_export import export_model
from mling.training.recipe import RunConfig

MODEL_DIR = "model"  # OUTPUT_DIR/evals/step-N/model: the hook's export, {model}
REPORT_DIR = "report"  # OUTPUT_DIR/evals/step-N/report: the evaluator's --output, {output}


def eval_dir(output_dir: Path, step: int) -> Path:
    """The folder of the evaluation at `step`."""
    return output_dir / "evals" / f"step-{step:08d}"


def eval_reports(output_dir: Path, name: str = "report.json") -> dict[int, Path]:
    """{step: the file `name` its evaluator wrote} of a run's evaluations that reported, by step."""
    found = sorted((output_dir / "evals").glob(f"step-*/{REPORT_DIR}/{name}"))
    return {int(path.parent.parent.name.removeprefix("step-")): path for path in found}


def run_eval_hook(run: RunConfig, align, tokenizer, image_size: int, out_dir: Path) -> int:
    """Export to out_dir/model and call `run.eval_module`'s main with `run.eval_args`, {output}
    being out_dir/report; returns its exit code (0: it reported), 1 when it raised, -1 when
    the module cannot be imported. A failure is one line on stderr.

    Random number generators are restored afterwards, so evaluating does not change training.
    """
    module = run.eval_module
    try:
        entry = importlib.import_module(module).main
    except (ImportError, AttributeError) as error:
        print(
            f"train.py: evaluation hook skipped, cannot use {module}.main: {error}", file=sys.stderr
        )
        return -1
    saved = rng_state()
    was_training = align.training
    align.eval()
    try:
        model_dir = export_model(align, tokenizer, image_size, out_dir / MODEL_DIR, overwrite=True)
        report = out_dir / REPORT_DIR
        argv = shlex.split(run.eval_args.format(model=model_dir, output=report))
        code = entry(argv)
        why = f"{module} exited with {code}"
    except SystemExit as stop:  # an evaluator that exits instead of returning its code
        code = stop.code if isinstance(stop.code, int) else 1
        why = f"{module} exited with {stop.code}"
    except Exception as error:  # an evaluation bug must not end a week of training
        code, why = 1, f"{module} raised {type(error).__name__}: {error}"
    finally:
        align.train(was_training)
        set_rng_state(saved)
    if code != 0:
        print(
            f"train.py: evaluation at {out_dir.name} failed ({why}); training goes on",
            file=sys.stderr,
        )
    return code
