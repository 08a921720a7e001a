"""The training recipe: one dataclass per concern, loaded from a preset file, overridden by flags.

A preset (`mling/configs/NAME.yaml`) has up to six sections, `model`, `data`, `loss`, `optim`,
`run` and `init` (trained weights to start from), each holding fields of the dataclass of that
name. Every field name is unique across sections, so the command line overrides any of them
flat: `--image-size 64 --lr 1e-3`. Each field is defined once, with its help
(`mling.common.field_options.option`): the parser and `train.py --help` are made from these
dataclasses (recipe_cli.py). Unlike the other entry points' configs, a recipe field's option
is spelled as its YAML key (`--flip false`, not `--no-flip`) and read by `load_recipe`, so a
flag and a preset key are read and checked alike.

A field marked `resume=FREE` cannot alter the run's math (how often it logs, where it evaluates,
how long it runs): `--resume` may change it. Every other field, changed on resume, is refused
(`recipe_changes`) unless the user names it in `--allow-recipe-change`.
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
from mling.common.field_options import option
from mling.common.moved import current_module
from mling.pairs.schema import COLUMN_PRESETS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"  # mling/configs


class RecipeError(InputError):
    """A bad preset or override, named in one line that says what to do."""


CROPS = ("random", "center")  # DataConfig.crop
OPTIMIZERS = ("lamb", "adamw")
LOSSES = ("softmax", "sigmoid")  # LossConfig.loss
# temperature_init when the preset and the command line leave it out, by loss: SigLIP starts
# the sigmoid loss at logit scale 10 (temperature 0.1); ALIGN's softmax from 1.0 (the field's)
LOSS_TEMPERATURE_INIT = {"sigmoid": 0.1}
PRECISIONS = ("no", "bf16", "fp16")
# What `init` may freeze: a whole tower (its projection included), or only the image tower's
# batch-norm running statistics.
FREEZABLE = ("image", "text", "image-bn")
# Field metadata `resume=FREE`: a resumed run may change it (it cannot alter the run's math).
FREE = "free"


@dataclass
class ModelConfig:
    """The towers: EfficientNet scaled from B0 (B3 = 1.2/1.4, L2 = 4.3/5.3) and BERT."""

    width_coefficient: float = option(
        2.0, help="EfficientNet channel multiplier; the image embedding is 320 x this"
    )
    depth_coefficient: float = option(3.1, help="EfficientNet block-repeat multiplier")
    block_repeats: list[int] = option(
        factory=lambda: [1, 2, 2, 3, 3, 4, 1], help="B0's blocks per stage, before x depth"
    )
    image_size: int = option(289, help="px, the square crop both training and evaluation see")
    drop_connect_rate: float = option(
        0.2, help="dropout on residual branches, growing linearly with depth"
    )
    bn_momentum: float = option(
        0.01, help="weight of each new batch in BN's running statistics (torch's; TF's 0.99)"
    )
    text_layers: int = option(12, help="BERT transformer blocks")
    text_hidden: int = option(768, help="BERT hidden width, channels")
    text_heads: int = option(12, help="BERT attention heads")
    text_intermediate: int = option(3072, help="BERT feed-forward width, channels")
    text_dropout: float = option(0.1, help="BERT hidden and attention dropout")
    max_length: int = option(64, help="tokens per caption at most; longer ones are truncated")
    temperature_init: float = option(
        1.0,
        help="temperature at step 0, dividing the cosines (paper: learnable, from 1.0); "
        "with --loss sigmoid 0.1 unless given (SigLIP's logit scale 10)",
        resume=FREE,  # a resumed run's temperature is the checkpoint's
    )


@dataclass
class DataConfig:
    """The batches: their size, the data stream, the captions per image, the image transform."""

    batch_size: int = option(
        16384, help="pairs per optimizer step, all processes together (the negatives)"
    )
    # gradient caching (grad_cache.py): the same gradients, the activation memory of one
    # micro-batch
    micro_batch: int = option(
        0, help="rows per forward pass in each process; 0: its whole share of the batch at once"
    )
    num_workers: int = option(
        4, help="loader processes per training process; 0 decodes in the trainer"
    )
    block_rows: int = option(
        1024, help="rows per shuffled read unit; larger shards are split into blocks"
    )
    shuffle_rows: int = option(
        8192, help="rows mixed together (several random blocks) before batching"
    )
    # so a batch holds an image with several of its captions (its names in several languages),
    # which the loss makes positives
    group_rows: int = option(
        1,
        help="rows of one image (--positives) kept together in chunks of up to this many; "
        "1: rows mixed one by one",
    )
    captions_per_image: int = option(
        1,
        help="K: each row's caption and K-1 others of its image (--positives); the loss is "
        "the mean over the K slots. 1: the paper",
    )
    # the transfer recipe: en, the language the towers were trained on
    anchor_language: str = option(
        "",
        help="with K >= 2: the image's caption in this language (the `language` column) "
        "takes slot 2, so each caption meets it; '': every slot drawn alike",
    )
    # one shape, so XLA/TPU compiles once; otherwise the same embeddings (padding is masked)
    # for less compute (benchmarks/bench_text_padding.py)
    pad_to_max_length: bool = option(
        False,
        help="pad every batch to --max-length; false: to its longest caption, rounded to 8",
        resume=FREE,
    )
    # the same embeddings for less compute where caption lengths vary (model.text_cls)
    text_bucket_rows: int = option(
        0,
        help="captions per text-tower pass, sorted by length and each bucket cut to its "
        "longest; 0: one pass over the batch",
        resume=FREE,
    )
    cache_mb: int = option(
        512, help="MiB per loader process: decoded-shard cache for split shards", resume=FREE
    )
    flip: bool = option(
        True, help="random horizontal flip (paper: on); off when captions say left or right"
    )
    # center with --flip false is a deterministic transform: a frozen image tower then embeds
    # each distinct image once (image_cache.py)
    crop: str = option(
        "random",
        help="training crop of the resized image: random (paper) or center (the evaluation crop)",
        choices=CROPS,
    )
    image_cache: bool = option(
        True,
        help="with --freeze image, --crop center and --flip false: embed each distinct "
        "image once, into OUTPUT_DIR/image-cache; false runs the frozen tower every step",
        resume=FREE,  # tested to give the losses of the tower run every step
    )
    column_preset: str = option(
        "",
        help="the pairs' column layout when it is not the pair schema",
        choices=tuple(sorted(COLUMN_PRESETS)),
    )
    columns: list[str] = option(
        factory=list,
        help="rename a source column to a pair column, SRC=DEST (repeatable; wins over the preset). "
        "Recipe key `columns`; the old flag --columns A=B,C=D still works, with a notice",
        flag="column",
        metavar="SRC=DEST",
    )


@dataclass
class LossConfig:
    """ALIGN's normalized-softmax loss, both directions (or SigLIP's sigmoid loss), and what
    counts as a positive."""

    # sigmoid_loss.py: no softmax over the batch, so the captions travel round the processes
    # in chunks; a learnable bias beside the temperature, from -10, never exported
    loss: str = option(
        "softmax",
        help="softmax: ALIGN's, both directions (paper); sigmoid: SigLIP's pairwise loss "
        "with a learnable bias",
        choices=LOSSES,
    )
    label_smoothing: float = option(
        0.1, help="paper: 0.1, in both directions; the sigmoid loss has none"
    )
    min_temperature: float = option(
        1e-3, help="floor after each step: a guard that a healthy run never hits"
    )
    # rows with equal values show one image (captioned in several languages) and are
    # positives of each other, not false negatives
    positives: str = option(
        "",
        help="a column (image_id) whose equal values mark rows of one image as positives "
        "of each other; '': each row its own image's only positive (paper)",
    )
    # MURAL's bitext task, in-batch, with the same temperature and label smoothing
    text_text_weight: float = option(
        0.0,
        help="weight of the text-text term: captions of one image are each other's "
        "positives among the batch's captions; 0: the paper's loss",
    )


@dataclass
class OptimConfig:
    """LAMB (or AdamW), linear warm-up then linear decay."""

    optimizer: str = option("lamb", help="lamb (paper) or adamw", choices=OPTIMIZERS)
    lr: float = option(1e-3, help="peak learning rate, reached at the end of warm-up")
    warmup_steps: int = option(10_000, help="optimizer steps, linear from 0 to --lr")
    # on resume, compared by the step where the decay ends (recipe_changes)
    decay_steps: int = option(0, help="step at which the linear decay reaches 0; 0: --max-steps")
    weight_decay: float = option(1e-5, help="on weight matrices and kernels only")
    # word-embedding rows are sparse, updated only when their token is in a batch
    embedding_decay: bool = option(
        False,
        help="treat the word-embedding table as a matrix (decay, LAMB trust ratio); "
        "false: as the biases",
    )
    beta1: float = option(0.9, help="first-moment decay")
    beta2: float = option(0.999, help="second-moment decay")
    eps: float = option(1e-6, help="added to the second moment's square root")
    max_grad_norm: float = option(
        0.0, help="global gradient-norm clip (AdamW; LAMB clips itself); 0: off (paper)"
    )


@dataclass
class RunConfig:
    """Length, seed, precision, logging, checkpoints and the periodic evaluation."""

    # resuming with more steps trains longer; the decay follows it unless --decay-steps is set
    max_steps: int = option(
        1_200_000, help="optimizer steps to train for (paper: 1.2M at batch 16384)", resume=FREE
    )
    seed: int = option(0, help="model init, dropout, data order and augmentation")
    precision: str = option(
        "no", help="no, bf16 or fp16 (accelerate's autocast)", choices=PRECISIONS
    )
    grad_checkpointing: bool = option(
        False, help="recompute text layers and EfficientNet blocks in backward", resume=FREE
    )
    # the same math on another device (not bit for bit)
    cpu: bool = option(False, help="train on CPU even when an accelerator is present", resume=FREE)
    log_every: int = option(
        100, help="steps between logged points (the loop's only host syncs)", resume=FREE
    )
    save_every: int = option(
        5000, help="steps between checkpoints; 0: only at the end and on signals", resume=FREE
    )
    keep_checkpoints: int = option(3, help="most recent checkpoints kept on disk", resume=FREE)
    eval_every: int = option(0, help="steps between evaluation hook calls; 0: off", resume=FREE)
    eval_module: str = option(
        "",
        help="entry point the hook calls with main(argv), e.g. mling.evaluation.multi30k",
        resume=FREE,
    )
    eval_args: str = option(
        "", help="its arguments; {model} and {output} are filled in", resume=FREE
    )


@dataclass
class InitConfig:
    """Trained weights to start from: a model folder (any AlignModel export) or a hub id."""

    # on resume the checkpoint's weights win over these (with a note)
    init: str = option("", help="both towers and the temperature; '': random", resume=FREE)
    init_image: str = option(
        "",
        help="the image tower (wins over --init; its config wins over the preset)",
        resume=FREE,
    )
    init_text: str = option(
        "", help="the text tower and its projection (wins over --init)", resume=FREE
    )
    freeze: list[str] = option(
        factory=list,
        help="keep fixed, in eval mode (LiT: --init-image SRC --freeze image); repeatable",
        choices=FREEZABLE,
    )


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
            if not item.metadata.get("help"):
                raise AssertionError(f"field {item.name} has no help: define it with option()")
            index[item.name] = (section, item, hints[item.name])
    return index


FIELDS = _field_index()


def type_name(kind: type) -> str:
    """int, float, bool, str, or list[int] as a user reads them."""
    if typing.get_origin(kind) is list:
        return f"a comma list of {type_name(typing.get_args(kind)[0])}"
    return {int: "an integer", float: "a number", bool: "true or false"}.get(kind, "text")


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
        raise RecipeError(
            f"{recipe_flag(name)}: cannot read {value!r} as {type_name(kind)}"
        ) from None


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
    "text_text_weight": (lambda v: _finite(v) and v >= 0, "a finite number, 0 (off) or more"),
    "positives": (
        lambda v: v == "" or v.isidentifier(),
        "'' (one positive per row) or a column name such as image_id",
    ),
}


def _validate(name: str, value: object) -> None:
    if name in RULES and not RULES[name][0](value):
        raise RecipeError(f"{recipe_flag(name)} {value}: must be {RULES[name][1]}")
    choices = FIELDS[name][1].metadata.get("choices")
    if choices is None:
        return
    wrong = sorted(set(value) - set(choices)) if isinstance(value, list) else []
    if not isinstance(value, list) and value not in choices and value != _default(name):
        wrong = [value]
    if wrong:
        raise RecipeError(
            f"{recipe_flag(name)} {', '.join(wrong)}: choose from {', '.join(choices)}"
        )


def _default(name: str) -> object:
    item = FIELDS[name][1]
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def recipe_flag(name: str) -> str:
    """A field's command-line spelling: `--image-size`, or the one its metadata names."""
    return "--" + FIELDS[name][1].metadata.get("flag", name).replace("_", "-")


def _unknown(name: object) -> RecipeError:
    name = str(name)  # a YAML key may be a number
    close = difflib.get_close_matches(name, FIELDS, n=3)
    hint = f"; did you mean {', '.join(recipe_flag(c) for c in close)}?" if close else ""
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
            if not isinstance(body or {}, dict):
                raise RecipeError(
                    f"{path}: section {section}: holds {body!r:.40}, not fields "
                    "(name: value, one per line)"
                )
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
    if recipe.loss.loss in LOSS_TEMPERATURE_INIT and "temperature_init" not in values["model"]:
        recipe.model.temperature_init = LOSS_TEMPERATURE_INIT[recipe.loss.loss]
    if recipe.loss.text_text_weight > 0 and recipe.loss.loss != "softmax":
        raise RecipeError(
            f"--text-text-weight {recipe.loss.text_text_weight} is a softmax term: pass "
            f"--loss softmax, or --text-text-weight 0 with --loss {recipe.loss.loss}"
        )
    if recipe.loss.text_text_weight > 0 and not recipe.loss.positives:
        raise RecipeError(
            f"--text-text-weight {recipe.loss.text_text_weight} needs --positives (e.g. "
            "image_id): the column that says which captions name one image"
        )
    return recipe


def recipe_changes(saved: Recipe, given: Recipe) -> list[tuple[str, object, object]]:
    """(field, saved value, given value) of every field that differs, those marked resume=FREE
    (which cannot alter the run's math) left out. decay_steps is compared by where the decay
    ends (`--decay-steps 4` equals `--max-steps 4` with 0); 0 in both follows --max-steps."""
    changes = []
    for name, (section, item, _) in FIELDS.items():
        old, new = getattr(getattr(saved, section), name), getattr(getattr(given, section), name)
        if name == "decay_steps" and (old or new):  # where the decay ends, 0 being --max-steps
            old, new = old or saved.run.max_steps, new or given.run.max_steps
        elif name == "decay_steps":  # both follow --max-steps, which a resume may extend
            continue
        if old != new and item.metadata.get("resume") != FREE:
            changes.append((name, old, new))
    return changes


def field_named(text: str) -> str:
    """A field as a user names it (`batch_size`, `batch-size`, `--batch-size`, `--column`) -> the
    field's name; RecipeError with the closest names otherwise."""
    key = text.strip().lstrip("-").replace("-", "_")
    flags = {recipe_flag(name)[2:].replace("-", "_"): name for name in FIELDS}
    if key in FIELDS or key in flags:
        return flags.get(key, key)
    close = difflib.get_close_matches(key, FIELDS, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise RecipeError(f"--allow-recipe-change {text}: no recipe field of that name{hint}")


def recipe_from_dict(data: dict) -> Recipe:
    """Inverse of Recipe.to_dict (checkpoints store the resolved recipe as YAML)."""
    flat = {name: value for body in data.values() for name, value in body.items()}
    return load_recipe(None, flat)


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    text = yaml.safe_dump(recipe.to_dict(), sort_keys=False, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")
