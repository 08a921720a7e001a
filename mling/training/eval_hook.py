"""The periodic evaluation hook: export the model, then call an evaluation entry point on it.

Every entry point of the toolkit is `main(argv) -> int`, so the hook needs only the module
name and its arguments, e.g. `--eval-every 5000 --eval-module mling.evaluation.multi30k --eval-args
"--multi30k DATA --images IMAGES --model {model} --output {output}"`.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from pathlib import Path

from mling.training.checkpoint import rng_state, set_rng_state
from mling.training.model_export import export_model
from mling.training.recipe import RunConfig


def run_eval_hook(run: RunConfig, align, tokenizer, image_size: int, out_dir: Path) -> int:
    """Export to out_dir/model and call `run.eval_module`'s main with `run.eval_args`; returns
    its exit code, or -1 when the module cannot be imported (skipped, one line on stderr).

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
        model_dir = export_model(align, tokenizer, image_size, out_dir / "model", overwrite=True)
        argv = shlex.split(run.eval_args.format(model=model_dir, output=out_dir))
        code = entry(argv)
    except Exception as error:  # an evaluation bug must not end a week of training
        print(f"train.py: evaluation hook {module} failed: {error}", file=sys.stderr)
        code = 1
    finally:
        align.train(was_training)
        set_rng_state(saved)
    return code
