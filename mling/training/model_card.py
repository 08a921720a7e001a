"""The model card every exported model carries: `README.md`, as the Hugging Face hub reads it.

YAML metadata first (license, library, pipeline, tags), then what the model is, its recipe and
data, the newest evaluation table when the run evaluated itself, and how to load it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mling.training.eval_hook import eval_dir, eval_reports
from mling.training.recipe import Recipe
from mling.training.sigmoid_loss import BIAS_INIT

DEFAULT_LICENSE = "other"  # the data decides; a trainer sets it with --license


def _first_table(markdown: str) -> str:
    """The first Markdown table of a report (its per-language summary)."""
    lines, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            lines.append(line)
            inside = True
        elif inside:
            break
    return "\n".join(lines)


def newest_evaluation(output_dir: Path | None) -> tuple[str, str] | None:
    """(step folder name, table) of the newest evaluation hook report under OUTPUT_DIR/evals."""
    if output_dir is None:
        return None
    reports = eval_reports(output_dir, "report.md")
    if not reports:
        return None
    step = max(reports)
    table = _first_table(reports[step].read_text(encoding="utf-8"))
    return (eval_dir(output_dir, step).name, table) if table else None


def loss_line(recipe: Recipe) -> str:
    """The loss that trained the model, as the card's recipe table says it."""
    if recipe.loss.loss == "sigmoid":
        return (
            f"pairwise sigmoid (SigLIP), learnable temperature from {recipe.model.temperature_init}"
            f" and bias from {BIAS_INIT:g} (a training-time term, not in this model)"
        )
    return (
        f"normalized softmax, both directions, label smoothing {recipe.loss.label_smoothing}, "
        f"learnable temperature from {recipe.model.temperature_init}"
    )


def model_card(
    recipe: Recipe,
    pairs: int | None,
    output_dir: Path | None = None,
    license: str = DEFAULT_LICENSE,
    name: str = "ALIGN dual encoder",
) -> str:
    """README.md text for an exported model trained with `recipe` on `pairs` image-text pairs."""
    model, init, optim, run = recipe.model, recipe.init, recipe.optim, recipe.run
    metadata = {
        "license": license,
        "library_name": "transformers",
        "pipeline_tag": "zero-shot-image-classification",
        "tags": ["align", "image-text-retrieval", "multilingual", "mling-align"],
    }
    sources = {
        "image tower": init.init_image or init.init or "random",
        "text tower": init.init_text or init.init or "random",
    }
    rows = [
        ("image tower", f"EfficientNet, width x{model.width_coefficient}, depth x"
         f"{model.depth_coefficient}, {model.image_size} px; from {sources['image tower']}"),
        ("text tower", f"BERT, {model.text_layers} layers x {model.text_hidden}, "
         f"{model.max_length} tokens; from {sources['text tower']}"),
        ("frozen", ", ".join(init.freeze) or "nothing"),
        ("loss", loss_line(recipe)),
        ("optimizer", f"{optim.optimizer}, lr {optim.lr:g}, warm-up {optim.warmup_steps} steps, "
         f"weight decay {optim.weight_decay:g}"),
        ("batch", f"{recipe.data.batch_size} pairs (in-batch negatives from every process)"),
        ("steps", f"{run.max_steps}"),
        ("data", f"{pairs} image-text pairs" if pairs is not None else "not recorded"),
    ]  # fmt: skip
    recipe_table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
    evaluation = newest_evaluation(output_dir)
    evaluation_text = (
        f"Zero-shot evaluation at {evaluation[0]} (mR: the mean of R@1/5/10 in both "
        f"directions):\n\n{evaluation[1]}"
        if evaluation
        else "No evaluation was run during training; `python eval/multi30k.py --model DIR ...` "
        "evaluates it."
    )
    body = f"""# {name}

An ALIGN image-text dual encoder (Jia et al., ICML 2021) trained with the mling-align
toolkit: image embedding = EfficientNet's pooled
features, text embedding = BERT's `[CLS]` through a linear projection, both L2-normalized.

## Recipe

{recipe_table}

The full recipe is in the training run's `checkpoints/*/recipe.yaml`.

## Evaluation

{evaluation_text}

## How to load

```python
from transformers import AlignModel, AlignProcessor, pipeline

model = AlignModel.from_pretrained("DIR")
processor = AlignProcessor.from_pretrained("DIR")
classify = pipeline("zero-shot-image-classification", model="DIR")
```

## License

`{license}`{" (not set: the training data's license decides; pass --license)" if license == DEFAULT_LICENSE else ""}.
"""
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n{body}"
