"""Zero-shot classification as pure functions: prompt ensembling and top-k accuracy.

Each class has one or more names and each language several templates ("a photo of a {}.");
every name x template is a prompt. A class's embedding is the mean of its prompts' L2-normalized
embeddings, L2-normalized again (CLIP's and ALIGN's prompt ensembling). An image's class is the
one with the highest cosine similarity. Ties are pessimistic, as in retrieval: another class
scoring as high as the true one (to within TIE_TOLERANCE) ranks above it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mling.evaluation.recall import TIE_TOLERANCE

TOP_KS = (1, 5)


def class_prompts(
    class_names: Sequence[Sequence[str]], templates: Sequence[str]
) -> tuple[list[str], list[int]]:
    """Names per class (C lists), T templates with "{}" -> (P prompts, (P,) class index each)."""
    prompts, prompt_to_class = [], []
    for index, names in enumerate(class_names):
        for name in names:
            for template in templates:
                prompts.append(template.replace("{}", name))
                prompt_to_class.append(index)
    return prompts, prompt_to_class


def ensemble_class_embeds(
    prompt_embeds: torch.Tensor, prompt_to_class: torch.Tensor | Sequence[int], num_classes: int
) -> torch.Tensor:
    """(P, D) prompt embeddings, (P,) class index -> (C, D) L2-normalized class embeddings."""
    prompt_to_class = torch.as_tensor(prompt_to_class, dtype=torch.long)
    counts = torch.bincount(prompt_to_class, minlength=num_classes)
    if (counts == 0).any():
        missing = (counts == 0).nonzero().flatten().tolist()
        raise ValueError(f"classes {missing} have no prompt; every class needs a name")
    summed = torch.zeros(num_classes, prompt_embeds.shape[1], dtype=torch.float32)
    summed.index_add_(0, prompt_to_class, F.normalize(prompt_embeds.float(), dim=-1))
    return F.normalize(summed / counts.unsqueeze(1), dim=-1)


def label_ranks(
    image_embeds: torch.Tensor, class_embeds: torch.Tensor, labels: torch.Tensor | Sequence[int]
) -> torch.Tensor:
    """(N, D) images, (C, D) classes, (N,) true class -> (N,) rank of the true class (0 = top)."""
    labels = torch.as_tensor(labels, dtype=torch.long).view(-1, 1)
    scores = F.normalize(image_embeds.float(), dim=-1) @ F.normalize(class_embeds.float(), dim=-1).T
    return (scores >= scores.gather(1, labels) - TIE_TOLERANCE).sum(1) - 1


def top_k_accuracy(
    ranks: torch.Tensor, ks: Sequence[int] = TOP_KS, num_classes: int | None = None
) -> dict[str, float | None]:
    """(N,) ranks -> {"top1": %, "top5": %}; None where k >= num_classes (always 100%)."""
    if ranks.numel() == 0:
        raise ValueError("accuracy over no images")
    return {
        f"top{k}": None
        if num_classes is not None and k >= num_classes
        else 100.0 * (ranks < k).double().mean().item()
        for k in ks
    }
