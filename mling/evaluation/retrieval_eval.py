"""Every model over every caption set: embeddings (batched, cached), then retrieval metrics."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mling.common.errors import InputError
from mling.evaluation.caption_sets import CaptionSet
from mling.evaluation.embed import EmbedConfig, Embedder
from mling.evaluation.retrieval import retrieval_metrics


def evaluate_retrieval(
    models: Mapping[str, Path],
    sets: Sequence[CaptionSet],
    cfg: EmbedConfig,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, dict]]:
    """{model name: {language: retrieval_metrics(...)}}; each distinct image list is embedded
    once per model, however many languages share it."""
    log = log or (lambda message: print(message, file=sys.stderr))
    results: dict[str, dict[str, dict]] = {}
    for name, model_dir in models.items():
        embedder = Embedder(model_dir, cfg, log)
        log(f"{name}: {model_dir} on {embedder.device}")
        image_embeds: dict[tuple[Path, ...], object] = {}
        results[name] = {}
        for caption_set in sets:
            if caption_set.images not in image_embeds:
                image_embeds[caption_set.images] = embedder.images(caption_set.images)
            text_embeds = embedder.texts(caption_set.captions)
            try:
                metrics = retrieval_metrics(
                    image_embeds[caption_set.images], text_embeds, caption_set.text_to_image
                )
            except ValueError as error:  # NaN or zero embeddings: the model, not the code
                raise InputError(f"{name} ({model_dir}): {error}") from None
            results[name][caption_set.language] = metrics
            log(f"  {caption_set.language}: mR {metrics['mR']:.1f}")
        del embedder  # free the model before loading the next one
    return results
