"""The training recipe: one dataclass per concern, loaded from a preset file, overridden by flags.

A preset (`mling/configs/NAME.yaml`) has up to six sections, `model`, `data`, `loss`, `optim`,
`run` and `init` (trained weights to start from), each holding fields of the dataclass of that name. Every field name is unique across
sections, so the command line overrides any of them flat: `--image-size 64 --lr 1e-3`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mling.common.errors import InputError
from mling.common.moved import current_module

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"  # mling/configs


class RecipeError(InputError):
    """A bad preset or override, named in one line that says what to do."""


@dataclass
class ModelConfig:
    # Image tower: EfficientNet scaled from B0 by these coefficients (B3 = 1.2/1.4, L2 = 4.3/5.3).
    width_coefficient: float = 2.0  # channel multiplier; the image embedding is 320 x this
    depth_coefficient: float = 3.1  # block-repeat multiplier
    block_repeats: list[int] = field(
        default_factory=lambda: [1, 2, 2, 3, 3, 4, 1]
    )  # per stage, x depth
    image_size: int = 289  # px, square crop the towers see (training and evaluation)
    drop_connect_rate: float = 0.2  # dropout on residual branches, growing linearly with depth
    # torch semantics: weight of each new batch in the running statistics (TF's 0.99 is 0.01)
    bn_momentum: float = 0.01
    # Text tower: BERT over a fixed number of tokens.
    text_layers: int = 12  # transformer blocks
    text_hidden: int = 768  # hidden width, channels
    text_heads: int = 12  # attention heads
    text_intermediate: int = 3072  # feed-forward width, channels
    text_dropout: float = 0.1  # hidden and attention dropout
    max_length: int = 64  # tokens per caption at most (longer ones are truncated)
    temperature_init: float = 1.0  # softmax temperature at step 0 (paper: learnable, from 1.0)


@dataclass
class DataConfig:
    batch_size: int = 16384  # pairs per optimizer step, all processes together (the negatives)
    # rows per forward pass in each process (gradient caching, grad_cache.py); 0: the process's
    # whole share of batch_size at once. Same gradients, activation memory of one micro-batch.
    micro_batch: int = 0
    num_workers: int = 4  # loader processes per training process; 0 decodes in the trainer
    block_rows: int = 1024  # rows per shuffled read unit; shards larger than this are split
    shuffle_rows: int = 8192  # rows mixed together (several random blocks) before batching
    # rows of one image (the `positives` column) kept together in chunks of up to this many
    # when a window is mixed, so a batch holds an image with several of its captions (its names
    # in several languages), which the loss makes positives; 1: rows mixed one by one
    group_rows: int = 1
    # captions per image in a batch: the row's own and K - 1 others of the rows sharing its
    # `positives` id (its names in other languages); the loss is the mean of the paper's loss
    # over the K caption slots. 1: the paper (one caption per row).
    captions_per_image: int = 1
    # with captions_per_image > 1: the image's caption in this language (the pairs' `language`
    # column) takes the second slot whenever the row's own caption is in another, so each
    # caption meets its image's anchor one (the transfer recipe: en, the language the towers
    # were trained on); "" draws every slot alike
    anchor_language: str = ""
    # pad every batch's captions to max_length (one shape: XLA/TPU compiles once); false pads
    # to the batch's longest caption rounded up to 8 tokens: the same embeddings (padding is
    # masked) for less compute (benchmarks/bench_text_padding.py)
    pad_to_max_length: bool = False
    # captions per text-tower pass when a batch's captions (B, or B x K) are sorted by length
    # and run in buckets, each cut to its own longest (model.text_cls): the same embeddings for
    # less compute where lengths vary; 0: one pass over the batch
    text_bucket_rows: int = 0
    cache_mb: int = 512  # per loader process: decoded-shard cache for split shards, MiB
    flip: bool = True  # random horizontal flip (paper: on); off when captions say left or right
    # training crop of the resized image: "random" (paper) or "center" (the evaluation crop).
    # center with --flip false is a deterministic transform: a frozen image tower then embeds
    # each distinct image once (image_cache)
    crop: str = "random"
    # with --freeze image and a deterministic transform (--crop center --flip false): embed each
    # distinct image once before step 1 into OUTPUT_DIR/image-cache and train on those
    # embeddings (image_cache.py); false runs the frozen tower every step
    image_cache: bool = True
    column_preset: str = ""  # mling.pairs column preset for foreign layouts: laion, wit, coyo, ...
    columns: list[str] = field(default_factory=list)  # SRC=DEST renames, e.g. TEXT=caption


@dataclass
class LossConfig:
    label_smoothing: float = 0.1  # paper: 0.1 in both directions
    min_temperature: float = 1e-3  # floor after each step, a guard that a healthy run never hits
    # "": each row is its own image's only positive (paper). A column name (image_id): rows
    # with equal values show one image (captioned in several languages) and are positives of
    # each other, not false negatives.
    positives: str = ""
    # weight of the text-text term (MURAL's bitext task, in-batch): captions of one image
    # (equal `positives` ids, every caption slot) are each other's positives among all the
    # batch's captions, with the same temperature and label smoothing; 0: the paper's loss
    text_text_weight: float = 0.0


@dataclass
class OptimConfig:
    optimizer: str = "lamb"  # lamb (paper) or adamw
    lr: float = 1e-3  # peak learning rate, reached at the end of warm-up
    warmup_steps: int = 10_000  # optimizer steps, linear from 0 to lr
    decay_steps: int = 0  # step at which the linear decay reaches 0; 0 means max_steps
    weight_decay: float = 1e-5  # on weight matrices and kernels only
    # The word-embedding table with the matrices (decay, LAMB trust ratio: plain LAMB), or, by
    # default, with the biases: its rows are sparse, updated only when their token is in a batch.
    embedding_decay: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-6
    max_grad_norm: float = 0.0  # global gradient-norm clip; 0 turns it off (paper: off)


@dataclass
class RunConfig:
    max_steps: int = 1_200_000  # optimizer steps to train for (paper: 1.2M at batch 16384)
    seed: int = 0  # model init, dropout, data order and augmentation
    precision: str = "no"  # no, bf16 or fp16 (through accelerate's autocast)
    grad_checkpointing: bool = False  # recompute text layers and EfficientNet blocks in backward
    cpu: bool = False  # train on CPU even when an accelerator is present
    log_every: int = 100  # steps between logged points (the only host syncs in the loop)
    save_every: int = 5000  # steps between checkpoints; 0 saves only at the end and on signals
    keep_checkpoints: int = 3  # most recent checkpoints kept on disk
    eval_every: int = 0  # steps between evaluation hook calls; 0 turns it off
    eval_module: str = ""  # entry point called with main(argv), e.g. mling.evaluation.multi30k
    eval_args: str = ""  # its arguments; {model} and {output} are filled in


CROPS = ("random", "center")  # DataConfig.crop

# What `init` may freeze: a whole tower (its projection included), or only the image tower's
# batch-norm running statistics.
FREEZABLE = ("image", "text", "image-bn")


@dataclass
class InitConfig:
    # Each a model folder (an export of train.py, any AlignModel) or a hub id; "" is random.
    init: str = ""  # both towers and the temperature
    init_image: str = ""  # the image tower (wins over init); its config wins over the preset
    init_text: str = ""  # the text tower and its projection (wins over init)
    freeze: list[str] = field(default_factory=list)  # of FREEZABLE: kept fixed, in eval mode


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "init": InitConfig,
}


@dataclass
class Recipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    init: InitConfig = field(default_factory=InitConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _field_index() -> dict[str, tuple[str, dataclasses.Field, type]]:
    """Field name -> (section, field, type); names are unique across sections by design."""
    index = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            if item.name in index:
                raise AssertionError(f"field {item.name} appears in two sections")
            index[item.name] = (section, item, hints[item.name])
    return index


FIELDS = _field_index()


def _coerce(name: str, value: object, kind: type) -> object:
    """A YAML or command-line value -> the field's type; lists may be comma-separated strings."""
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return value.lower() in {"true", "1", "yes"}
            return bool(value)
        if typing.get_origin(kind) is list:
            (item_kind,) = typing.get_args(kind)
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            return [item_kind(v) for v in value]
        if kind is int and isinstance(value, str):
            return int(float(value)) if "e" in value.lower() else int(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise RecipeError(f"--{name.replace('_', '-')}: cannot read {value!r} as {kind}") from None


def _finite(value: float) -> bool:
    return math.isfinite(value)


# Values no run can use, refused before any work: (test, what the value must be).
RULES: dict[str, tuple[typing.Callable[[typing.Any], bool], str]] = {
    "max_steps": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "image_size": (lambda v: v >= 16, "at least 16 (pixels)"),
    "max_length": (lambda v: v >= 2, "at least 2 ([CLS] and [SEP])"),
    "text_layers": (lambda v: v >= 1, "at least 1"),
    "text_hidden": (lambda v: v >= 1, "at least 1"),
    "text_heads": (lambda v: v >= 1, "at least 1"),
    "micro_batch": (lambda v: v >= 0, "0 (the whole batch) or more"),
    "num_workers": (lambda v: v >= 0, "0 or more"),
    "block_rows": (lambda v: v >= 1, "at least 1"),
    "shuffle_rows": (lambda v: v >= 1, "at least 1"),
    "group_rows": (lambda v: v >= 1, "at least 1"),
    "captions_per_image": (lambda v: v >= 1, "at least 1"),
    "text_bucket_rows": (lambda v: v >= 0, "0 (off) or more"),
    "cache_mb": (lambda v: v >= 0, "0 or more"),
    "log_every": (lambda v: v >= 1, "at least 1"),
    "save_every": (lambda v: v >= 0, "0 (only at the end) or more"),
    "keep_checkpoints": (lambda v: v >= 1, "at least 1"),
    "eval_every": (lambda v: v >= 0, "0 (off) or more"),
    "warmup_steps": (lambda v: v >= 0, "0 or more"),
    "decay_steps": (lambda v: v >= 0, "0 (max_steps) or more"),
    "lr": (lambda v: _finite(v) and v > 0, "a finite number above 0"),
    "weight_decay": (lambda v: _finite(v) and v >= 0, "a finite number, 0 or more"),
    "eps": (lambda v: _finite(v) and v > 0, "a finite number above 0"),
    "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "beta2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "max_grad_norm": (lambda v: _finite(v) and v >= 0, "a finite number, 0 (off) or more"),
    "label_smoothing": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "temperature_init": (lambda v: _finite(v) and v > 0, "a finite number above 0"),
    "min_temperature": (lambda v: _finite(v) and v > 0, "a finite number above 0"),
    "text_dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "drop_connect_rate": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "bn_momentum": (lambda v: 0 <= v <= 1, "in [0, 1] (torch's convention)"),
    "crop": (lambda v: v in CROPS, f"one of {', '.join(CROPS)}"),
    "text_text_weight": (lambda v: _finite(v) and v >= 0, "a finite number, 0 (off) or more"),
    "positives": (
        lambda v: v == "" or v.isidentifier(),
        "'' (one positive per row) or a column name such as image_id",
    ),
}


def _validate(name: str, value: object) -> None:
    if name in RULES and not RULES[name][0](value):
        raise RecipeError(f"--{name.replace('_', '-')} {value}: must be {RULES[name][1]}")


def _unknown(name: str) -> RecipeError:
    close = difflib.get_close_matches(name, FIELDS, n=3)
    hint = (
        f"; did you mean {', '.join('--' + c.replace('_', '-') for c in close)}?" if close else ""
    )
    return RecipeError(f"unknown recipe option --{name.replace('_', '-')}{hint}")


def preset_path(config: str | Path) -> Path:
    """A preset name (`tiny`) or a YAML path -> the file; RecipeError when neither exists."""
    path = Path(config)
    if path.is_file():
        return path
    named = CONFIG_DIR / f"{config}.yaml"
    if named.is_file():
        return named
    names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise RecipeError(f"config {config} not found; pass a YAML path or one of: {names}")


def parse_overrides(args: list[str]) -> dict[str, str]:
    """`--key value` and `--key=value` pairs -> {key_with_underscores: value}."""
    overrides: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise RecipeError(f"unexpected argument {arg!r}; options look like --image-size 64")
        key, sep, value = arg[2:].partition("=")
        if not sep:
            if i + 1 >= len(args):
                raise RecipeError(f"{arg} needs a value")
            value = args[i + 1]
            i += 1
        overrides[key.replace("-", "_")] = value
        i += 1
    return overrides


def load_recipe(
    config: str | Path | None = None, overrides: dict[str, object] | None = None
) -> Recipe:
    """Defaults, then the preset file, then overrides (flat field names)."""
    values: dict[str, dict[str, object]] = {section: {} for section in SECTIONS}
    if config is not None:
        path = preset_path(config)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            problem = str(error).splitlines()[0]
            raise RecipeError(
                f"{path} is not valid YAML ({problem}); fix it or pass a preset name"
            ) from None
        if not isinstance(loaded, dict):
            raise RecipeError(
                f"{path} holds a {type(loaded).__name__}, not sections (model:, data:, ...)"
            )
        for section, body in loaded.items():
            if section not in SECTIONS:
                raise RecipeError(f"{path}: unknown section {section!r}; use {', '.join(SECTIONS)}")
            for name, value in (body or {}).items():
                if name not in FIELDS or FIELDS[name][0] != section:
                    raise _unknown(name)
                values[section][name] = value
    for name, value in (overrides or {}).items():
        if name not in FIELDS:
            raise _unknown(name)
        values[FIELDS[name][0]][name] = value
    sections = {}
    for section, cls in SECTIONS.items():
        coerced = {n: _coerce(n, v, FIELDS[n][2]) for n, v in values[section].items()}
        for name, value in coerced.items():
            _validate(name, value)
        if "eval_module" in coerced:
            coerced["eval_module"] = current_module(
                coerced["eval_module"], "train.py", "eval_module "
            )
        unknown = set(coerced.get("freeze", ())) - set(FREEZABLE)
        if unknown:
            raise RecipeError(
                f"--freeze {', '.join(sorted(unknown))}: choose from {', '.join(FREEZABLE)}"
            )
        sections[section] = cls(**coerced)
    recipe = Recipe(**sections)
    if recipe.data.group_rows > 1 and not recipe.loss.positives:
        raise RecipeError(
            f"--group-rows {recipe.data.group_rows} needs --positives (e.g. image_id): rows of "
            "one image in one batch would be each other's false negatives"
        )
    if recipe.data.captions_per_image > 1 and not recipe.loss.positives:
        raise RecipeError(
            f"--captions-per-image {recipe.data.captions_per_image} needs --positives (e.g. "
            "image_id): the column that says which rows show one image"
        )
    if recipe.data.anchor_language and recipe.data.captions_per_image < 2:
        raise RecipeError(
            f"--anchor-language {recipe.data.anchor_language} needs --captions-per-image 2 or "
            "more: the anchor caption takes the second slot"
        )
    if recipe.loss.text_text_weight > 0 and not recipe.loss.positives:
        raise RecipeError(
            f"--text-text-weight {recipe.loss.text_text_weight} needs --positives (e.g. "
            "image_id): the column that says which captions name one image"
        )
    return recipe


def recipe_from_dict(data: dict) -> Recipe:
    """Inverse of Recipe.to_dict (checkpoints store the resolved recipe as YAML)."""
    flat = {name: value for body in data.values() for name, value in body.items()}
    return load_recipe(None, flat)


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    text = yaml.safe_dump(recipe.to_dict(), sort_keys=False, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")
