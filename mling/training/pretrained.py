"""Starting from trained weights: a whole model or each tower from its own source, and frozen
towers (LiT: a trained image tower kept fixed while a new text tower learns many languages).

A source is a model folder (an export of train.py, any `AlignModel` directory) or a hub id
(`mling.common.hub`). A tower taken from a source keeps the source's architecture: its config
wins over the preset for that tower, and the preset supplies the rest. The image embedding is
the image tower's pooled features, so the text projection is sized to them; a text tower whose
projection does not fit is refused, never silently reinitialized.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from transformers import AlignConfig, AlignModel

from mling.common.errors import InputError
from mling.common.hub import Source, resolve_source
from mling.training.model import align_config
from mling.training.recipe import InitConfig, ModelConfig

# Which parameters belong to which side. The projection goes with the text tower (ALIGN's image
# embedding has none); the temperature is shared and always trains.
TOWER_PREFIXES = {"image": ("vision_model.",), "text": ("text_model.", "text_projection.")}
WORD_EMBEDDINGS = "text_model.embeddings.word_embeddings.weight"


@dataclass(frozen=True)
class InitSources:
    """The resolved source of each tower; None keeps that tower random."""

    image: Source | None = None
    text: Source | None = None

    def to_dict(self) -> dict[str, dict | None]:
        return {tower: s.to_dict() if s else None for tower, s in vars(self).items()}


def resolve_init(cfg: InitConfig) -> InitSources:
    """`init` for both towers, `init_image` / `init_text` for one each (they win over `init`)."""
    resolved: dict[str, Source] = {}

    def source(text: str, flag: str) -> Source | None:
        if not text:
            return None
        if text not in resolved:
            resolved[text] = resolve_source(text, flag)
        return resolved[text]

    return InitSources(
        image=source(cfg.init_image, "--init-image") or source(cfg.init, "--init"),
        text=source(cfg.init_text, "--init-text") or source(cfg.init, "--init"),
    )


def torch_batch_norm_momentum(momentum: float) -> float:
    """transformers' EfficientNet configs carry TF's convention (0.99: keep 99% of the running
    statistics), which torch's BatchNorm2d would read as "keep 1%". Values above 0.5 are TF's
    and are converted; ours are torch's already (mling/configs say 0.01 or 0.1)."""
    return round(1.0 - momentum, 6) if momentum > 0.5 else momentum


def _source_config(source: Source, flag: str) -> AlignConfig:
    """The source's AlignConfig; one InputError line for a folder without one (transformers
    would hand back the default config for an empty folder)."""
    if source.path.is_dir() and not (source.path / "config.json").is_file():
        raise InputError(
            f"{flag} {source.describe()} holds no config.json: not a model folder; pass an "
            "AlignModel export (train.py's OUTPUT_DIR/model) or a hub id"
        )
    try:
        return AlignConfig.from_pretrained(source.path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{flag} {source.describe()} holds no AlignModel config: {str(error).splitlines()[0]}"
        ) from None


def initial_config(cfg: ModelConfig, vocab_size: int, sources: InitSources) -> AlignConfig:
    """The preset's config with each sourced tower's config in its place.

    Raises InputError when the pieces cannot meet: a text tower's vocabulary that is not the
    tokenizer's, a caption length beyond its positions, a projection that is not the image
    embedding's width.
    """
    config = align_config(cfg, vocab_size)
    if sources.image:
        source = _source_config(sources.image, "--init-image")
        vision = copy.deepcopy(source.vision_config)
        vision.batch_norm_momentum = torch_batch_norm_momentum(vision.batch_norm_momentum)
        vision.image_size = cfg.image_size  # the data's crop size
        # hidden_dim is only the global pooling window: it must cover the last feature map
        vision.hidden_dim = max(vision.hidden_dim, config.vision_config.hidden_dim)
        config.vision_config = vision
        config.projection_dim = source.projection_dim
    if sources.text:
        source = _source_config(sources.text, "--init-text")
        text = copy.deepcopy(source.text_config)
        if text.vocab_size != vocab_size:
            raise InputError(
                f"--init-text {sources.text.describe()}: {WORD_EMBEDDINGS} has {text.vocab_size}"
                f" rows, the tokenizer {vocab_size} tokens; pass the tokenizer it was trained"
                " with (or keep the text tower random with --init-image alone)"
            )
        if text.max_position_embeddings < cfg.max_length:
            raise InputError(
                f"--init-text {sources.text.describe()}: {text.max_position_embeddings} "
                f"positions, fewer than --max-length {cfg.max_length}"
            )
        if source.projection_dim != config.projection_dim:
            raise InputError(
                f"text_projection.weight of --init-text {sources.text.describe()} is "
                f"({source.projection_dim}, {text.hidden_size}), the image tower's embedding is "
                f"{config.projection_dim} wide; take both towers from sources that were trained "
                "together, or keep the text tower random"
            )
        config.text_config = text
    return config


def _weights(source: Source, flag: str) -> dict[str, torch.Tensor]:
    """The source's weights; one InputError line when it has none that load."""
    try:
        model = AlignModel.from_pretrained(source.path)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise InputError(
            f"{flag} {source.describe()} holds no loadable AlignModel weights "
            f"({str(error).splitlines()[0]}); pass an AlignModel export or a hub id"
        ) from None
    return model.state_dict()


def load_towers(align: AlignModel, sources: InitSources) -> list[str]:
    """Copy each sourced tower's weights into `align` (and the temperature when both towers
    come from one source). Returns what was loaded, one line per tower, for the log.

    Raises InputError naming the tensors whose shapes do not fit.
    """
    target = align.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    lines = []
    by_source: dict[Source, list[str]] = {}
    for tower in ("image", "text"):
        source = getattr(sources, tower)
        if source:
            by_source.setdefault(source, []).append(tower)
    for source, towers in by_source.items():
        flag = "--init" if len(towers) == 2 else f"--init-{towers[0]}"
        weights = _weights(source, flag)
        prefixes = tuple(p for tower in towers for p in TOWER_PREFIXES[tower])
        if set(towers) == {"image", "text"}:
            prefixes += ("temperature",)
        names = [name for name in target if name.startswith(prefixes)]
        missing = [name for name in names if name not in weights]
        misfit = [
            f"{name} {tuple(weights[name].shape)} -> {tuple(target[name].shape)}"
            for name in names
            if name in weights and weights[name].shape != target[name].shape
        ]
        if missing or misfit:
            detail = "; ".join((misfit + [f"{m} missing" for m in missing])[:3])
            raise InputError(f"{source.describe()} does not fit this model: {detail}")
        loaded.update({name: weights[name] for name in names})
        lines.append(f"{' and '.join(towers)} tower(s) from {source.describe()}")
    align.load_state_dict(loaded, strict=False)
    return lines


def build_initial_model(
    cfg: ModelConfig, vocab_size: int, sources: InitSources, seed: int = 0
) -> tuple[AlignModel, list[str]]:
    """A model with each sourced tower's architecture and weights; the rest random (seeded)."""
    torch.manual_seed(seed)
    align = AlignModel(initial_config(cfg, vocab_size, sources))
    return align, load_towers(align, sources)


def freeze(align: AlignModel, parts: list[str]) -> None:
    """Frozen towers get no gradient (and so no optimizer state): requires_grad off. Their
    modes (eval) are kept by DualEncoder, which also runs them without autograd."""
    for part in parts:
        if part in TOWER_PREFIXES:
            for name, parameter in align.named_parameters():
                if name.startswith(TOWER_PREFIXES[part]):
                    parameter.requires_grad_(False)
