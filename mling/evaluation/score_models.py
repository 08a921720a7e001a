"""Every model over every caption set: embeddings (batched, cached), then retrieval metrics, each
language on its own images and, given a shared pool, the pool's languages on the pool."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from mling.common.errors import InputError
from mling.evaluation.caption_sets import CaptionSet
from mling.evaluation.embed import EmbedConfig, Embedder
from mling.evaluation.recall import KS, retrieval_metrics
from mling.evaluation.shared_pool import SharedPool, pool_captions

Results = dict[str, dict[str, dict]]  # {model: {language: retrieval_metrics(...)}}


def pool_metrics(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    text_to_image: torch.Tensor | Sequence[int],
    images: Sequence[int],
    ks: Sequence[int] = KS,
) -> dict:
    """(N, D) image_embeds, (M, D) text_embeds, (M,) text_to_image, (P,) pool image indices ->
    retrieval_metrics on the P pool images and the captions of those images alone, both
    directions: the other N - P images are no candidates and their captions no queries."""
    kept, remapped = pool_captions(text_to_image, images)
    index = torch.as_tensor(images, dtype=torch.long)
    return retrieval_metrics(image_embeds[index], text_embeds[kept], remapped, ks)


def evaluate_retrieval(
    models: Mapping[str, Path],
    sets: Sequence[CaptionSet],
    cfg: EmbedConfig,
    log: Callable[[str], None] | None = None,
    pool: SharedPool | None = None,
) -> tuple[Results, SharedPool | None]:
    """({model: {language: retrieval_metrics(...)}} with each language on its own images, `pool`
    with its `models` filled in: the same for the pool's languages on the pool's images, left
    empty when the pool is refused). Each distinct image list is embedded once per model,
    however many languages share it; the pool's metrics reuse those embeddings."""
    log = log or (lambda message: print(message, file=sys.stderr))
    compared = pool is not None and pool.refused is None
    results: Results = {}
    pooled: Results = {}
    for name, model_dir in models.items():
        embedder = Embedder(model_dir, cfg, log)
        log(f"{name}: {model_dir} on {embedder.device}")
        image_embeds: dict[tuple[Path, ...], object] = {}
        results[name], pooled[name] = {}, {}
        for caption_set in sets:
            if caption_set.images not in image_embeds:
                image_embeds[caption_set.images] = embedder.images(caption_set.images)
            images = image_embeds[caption_set.images]
            text_embeds = embedder.texts(caption_set.captions)
            language = caption_set.language
            try:
                metrics = retrieval_metrics(images, text_embeds, caption_set.text_to_image)
                if compared and language in pool.languages:
                    pooled[name][language] = _on_pool(
                        metrics, images, text_embeds, caption_set, pool
                    )
            except ValueError as error:  # NaN or zero embeddings: the model, not the code
                raise InputError(f"{name} ({model_dir}): {error}") from None
            results[name][language] = metrics
            on_pool = pooled[name].get(language)
            shared = f", on the shared pool {on_pool['mR']:.1f}" if on_pool else ""
            log(f"  {language}: mR {metrics['mR']:.1f}{shared}")
        del embedder  # free the model before loading the next one
    if pool is None:
        return results, None
    return results, dataclasses.replace(pool, models=pooled if compared else {})


def _on_pool(
    metrics: dict,
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    caption_set: CaptionSet,
    pool: SharedPool,
) -> dict:
    """The language's metrics on the pool, given its own `metrics`: a pool of every image keeps
    every caption and candidate (Multi30k, XM3600), so there they are the same."""
    if len(pool.images) == len(caption_set.images):
        return metrics
    return pool_metrics(image_embeds, text_embeds, caption_set.text_to_image, pool.images)
