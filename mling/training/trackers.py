"""The tracker a run reports to: TensorBoard (the default), Weights & Biases, or none.

Whatever the choice, `metrics.jsonl` is written (`train_log.py`); the tracker gets the same
scalars through `accelerator.log`, and the recipe as its configuration. W&B follows its own
environment (`WANDB_MODE=offline`, `WANDB_PROJECT`, `WANDB_DIR`, `WANDB_API_KEY`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mling.common.errors import InputError

TRACKERS = ("tensorboard", "wandb", "none")  # the choices of train.py's --report-to
WANDB_PROJECT = "mling-align"  # the W&B project when WANDB_PROJECT is not set


def log_with(report_to: str) -> str | None:
    """accelerate's `log_with` for a --report-to choice. Raises InputError (one line) when the
    tracker's package is not installed, before any work is done."""
    if report_to == "wandb":
        try:  # importing it, not finding it: a package that is there but breaks counts too
            import wandb  # noqa: F401
        except ImportError as error:
            raise InputError(
                "--report-to wandb needs the wandb package: pip install 'mling-align[wandb]' "
                f"(or pass --report-to tensorboard or none); importing it says: {error}"
            ) from None
    return None if report_to == "none" else report_to


def start_tracker(accelerator, report_to: str, output_dir: Path, recipe: dict) -> None:
    """Start the run's tracker (main process only). recipe: `Recipe.to_dict()`, section by field.

    TensorBoard writes OUTPUT_DIR/tensorboard/; W&B writes its run files under OUTPUT_DIR/wandb/
    (or under WANDB_DIR when it is set), one W&B run per launch, named after OUTPUT_DIR.
    """
    if report_to == "tensorboard":
        # TensorBoard's hparams take numbers and strings only: one flat key per recipe field
        hparams = {f"{s}/{k}": str(v) for s, body in recipe.items() for k, v in body.items()}
        accelerator.init_trackers("tensorboard", hparams)
    elif report_to == "wandb":
        settings = {
            "name": output_dir.resolve().name,
            "dir": os.environ.get("WANDB_DIR") or str(output_dir),
        }
        project = os.environ.get("WANDB_PROJECT") or WANDB_PROJECT
        # W&B's config keeps the sections nested and the values typed (filterable in its UI)
        accelerator.init_trackers(project, recipe, init_kwargs={"wandb": settings})
