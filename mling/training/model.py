"""ALIGN's dual encoder: `transformers.AlignModel` built from a recipe, wrapped for training.

The image embedding is EfficientNet's globally average-pooled last feature map (no
classification head, as in the paper), so its width is 320 x width_coefficient; the text
embedding is BERT's [CLS] state through a linear projection to that same width.
"""

from __future__ import annotations

import contextlib
import math
import types

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import AlignConfig, AlignModel

from mling.training.batch_norm import running_stats_frozen
from mling.training.recipe import ModelConfig

B0_LAST_CHANNELS = 320  # EfficientNet-B0's last stage; the image embedding is this x width
DEPTH_DIVISOR = 8  # EfficientNet rounds every channel count to a multiple of this


def image_embed_dim(width_coefficient: float) -> int:
    """EfficientNet's channel rounding (as transformers' round_filters) of the last stage."""
    channels = B0_LAST_CHANNELS * width_coefficient
    rounded = max(DEPTH_DIVISOR, int(channels + DEPTH_DIVISOR / 2) // DEPTH_DIVISOR * DEPTH_DIVISOR)
    if rounded < 0.9 * channels:
        rounded += DEPTH_DIVISOR
    return int(rounded)


def align_config(cfg: ModelConfig, vocab_size: int) -> AlignConfig:
    """The transformers config of a preset; the projection width follows the image tower."""
    if cfg.text_hidden % cfg.text_heads:
        raise ValueError(
            f"text_hidden {cfg.text_hidden} is not divisible by text_heads {cfg.text_heads}"
        )
    return AlignConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": cfg.text_hidden,
            "num_hidden_layers": cfg.text_layers,
            "num_attention_heads": cfg.text_heads,
            "intermediate_size": cfg.text_intermediate,
            "hidden_dropout_prob": cfg.text_dropout,
            "attention_probs_dropout_prob": cfg.text_dropout,
            "max_position_embeddings": max(cfg.max_length, 64),
        },
        vision_config={
            "image_size": cfg.image_size,
            "width_coefficient": cfg.width_coefficient,
            "depth_coefficient": cfg.depth_coefficient,
            "num_block_repeats": list(cfg.block_repeats),
            "drop_connect_rate": cfg.drop_connect_rate,
            # transformers' default 0.99 is TF's convention passed to torch's BatchNorm2d, where
            # it would keep little more than the last batch in the running statistics.
            "batch_norm_momentum": cfg.bn_momentum,
            # Only the size of the global pooling window: anything >= the last feature map.
            "hidden_dim": max(2560, math.ceil(cfg.image_size / 32) + 1),
        },
        projection_dim=image_embed_dim(cfg.width_coefficient),
        temperature_init_value=cfg.temperature_init,
    )


def build_model(cfg: ModelConfig, vocab_size: int, seed: int = 0) -> AlignModel:
    """A freshly initialized AlignModel (same weights for the same seed)."""
    torch.manual_seed(seed)
    return AlignModel(align_config(cfg, vocab_size))


class DualEncoder(nn.Module):
    """Training view of an AlignModel: one forward returns both embeddings, the temperature
    and the sigmoid loss's bias.

    Going through one `forward` lets DistributedDataParallel see every parameter used. The
    text pooler (dense + tanh) is not part of ALIGN's embedding, so it is frozen: DDP would
    otherwise wait forever for its gradient.

    logit_bias: the sigmoid loss's learnable bias (sigmoid_loss.py), a scalar parameter here
    beside the AlignModel rather than in it, so exports stay plain AlignModels (it shifts
    every logit alike and ranks nothing); None for the softmax loss, which has no bias.
    """

    def __init__(
        self,
        align: AlignModel,
        frozen: tuple[str, ...] = (),
        text_bucket_rows: int = 0,
        logit_bias: float | None = None,
    ):
        super().__init__()
        self.align = align
        self.logit_bias = None if logit_bias is None else nn.Parameter(torch.tensor(logit_bias))
        self.frozen = frozenset(frozen)  # of "image", "text", "image-bn" (recipe.FREEZABLE)
        self.text_bucket_rows = text_bucket_rows  # see text_cls
        for parameter in align.text_model.pooler.parameters() if align.text_model.pooler else ():
            parameter.requires_grad_(False)
        # transformers pools with AvgPool2d(hidden_dim, ceil_mode=True), a window larger than
        # the map: the global mean on CPU and CUDA, but an empty (B, C, 0, 0) output on XLA
        # (a TPU). The same mean, said plainly; the pooler has no weights, so exports are as
        # before.
        if isinstance(align.vision_model.pooler, nn.AvgPool2d):
            align.vision_model.pooler = nn.AdaptiveAvgPool2d(1)

    def train(self, mode: bool = True) -> DualEncoder:
        """A frozen tower stays in eval mode (running statistics fixed, no dropout) whatever
        mode the rest is in; "image-bn" fixes only the image tower's batch-norm statistics."""
        super().train(mode)
        if "image" in self.frozen:
            self.align.vision_model.eval()
        elif "image-bn" in self.frozen:
            for module in self.align.vision_model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        if "text" in self.frozen:
            self.align.text_model.eval()
        return self

    def forward(
        self,
        pixel_values: torch.Tensor | None,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """pixel_values (B, 3, S, S) float, input_ids/attention_mask (B, L) ->
        image_embeds (B, D), text_embeds (B, D), both L2-normalized, the scalar temperature and
        the scalar logit bias (None without one). A tower whose input is None is skipped and
        its embeddings are None (gradient caching re-runs only the towers that train)."""
        image_embeds = text_embeds = None
        # A frozen tower runs without autograd: no activations kept, no backward through it.
        grad = torch.is_grad_enabled()
        if pixel_values is not None:
            # NHWC activations: 2.2x faster EfficientNet forward+backward on CPU (depthwise
            # convs), and what cuDNN prefers under autocast. The weights stay NCHW, so
            # checkpoints do too.
            pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
            with torch.set_grad_enabled(grad and "image" not in self.frozen):
                pooled = self.align.vision_model(pixel_values=pixel_values).pooler_output
            image_embeds = F.normalize(pooled, dim=-1)
        if input_ids is not None:
            with torch.set_grad_enabled(grad and "text" not in self.frozen):
                cls = text_cls(self.align, input_ids, attention_mask, self.text_bucket_rows)
                cls = self.align.text_projection(cls)
            text_embeds = F.normalize(cls, dim=-1)
        return image_embeds, text_embeds, self.align.temperature, self.logit_bias


def text_cls(
    align: AlignModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, bucket_rows: int = 0
) -> torch.Tensor:
    """(N, L) right-padded token ids and mask -> BERT's [CLS] states (N, H).

    bucket_rows > 0: the captions sorted by length and run bucket_rows at a time, each bucket
    cut to its own longest caption. Padding is masked and positions are absolute, so the
    states are the same (to float rounding) for less compute where lengths vary, as 100+
    languages' captions do (Khmer names run 5x longer than Chinese ones); the cost is one
    host sync per forward for the lengths. 0: one pass over all N rows as they come."""
    if bucket_rows <= 0 or input_ids.shape[0] <= bucket_rows:
        if input_ids.device.type == "xla":
            attention_mask = attention_bias(align, attention_mask)
        return align.text_model(input_ids=input_ids, attention_mask=attention_mask)[0][:, 0]
    lengths = attention_mask.sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    ascending = lengths[order].tolist()  # one sync for every bucket's length
    parts = []
    for start in range(0, len(ascending), bucket_rows):
        rows = order[start : start + bucket_rows]
        width = max(1, int(ascending[rows.shape[0] + start - 1]))  # the bucket's longest
        out = align.text_model(input_ids=input_ids[rows, :width],
                               attention_mask=attention_mask[rows, :width])  # fmt: skip
        parts.append(out[0][:, 0])
    return torch.cat(parts)[torch.argsort(order)]


def attention_bias(align: AlignModel, attention_mask: torch.Tensor) -> torch.Tensor:
    """(N, L) 1/0 mask -> the (N, 1, 1, L) mask BERT's attention takes, built here as
    transformers builds it (bool for SDPA, 0 or the dtype's minimum added for eager).

    Given the (N, L) mask, transformers first asks whether any token is padding, to drop the
    mask when none is: a host read in every forward, and on XLA (a TPU) a graph cut in the
    middle of the step, one more graph for batches without padding."""
    keep = attention_mask[:, None, None, :].bool()
    if align.text_model.config._attn_implementation == "sdpa":
        return keep
    dtype = align.text_model.embeddings.word_embeddings.weight.dtype
    zero = torch.zeros((), dtype=dtype, device=keep.device)
    return torch.where(keep, zero, torch.finfo(dtype).min)


def _checkpointed_forward(block: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    if block.training and torch.is_grad_enabled():
        # The recompute normalizes as the forward did but must not move the running statistics
        # a second time.
        def contexts():
            return contextlib.nullcontext(), running_stats_frozen(block)

        return checkpoint(
            block._plain_forward, hidden_states, use_reentrant=False, context_fn=contexts
        )
    return block._plain_forward(hidden_states)


def enable_gradient_checkpointing(align: AlignModel) -> None:
    """Recompute each BERT layer and each EfficientNet block in the backward pass.

    transformers checkpoints the text layers itself; its EfficientNet does not, so each block's
    forward is replaced on the instance. Parameter names stay unchanged (exports load as usual).
    Batch norm's running statistics move in the forward only, never in the recompute. (The
    text tower has layer norm only.)
    """
    text = align.text_model
    enable = (
        getattr(text, "activation_checkpointing_enable", None) or text.gradient_checkpointing_enable
    )
    enable({"use_reentrant": False})
    for block in align.vision_model.encoder.blocks:
        if not hasattr(block, "_plain_forward"):
            block._plain_forward = block.forward
            block.forward = types.MethodType(_checkpointed_forward, block)


def count_parameters(module: nn.Module, trainable: bool = False) -> int:
    """All parameters, or only those that train (frozen towers and the text pooler left out)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)
