"""A tiny randomly initialised AlignModel directory (and a tokenizer for it), for tests and
benchmarks of the evaluators.

About 150k parameters: a 1-layer, 32-wide BERT and an EfficientNet at a quarter of B0's width
and one block per stage, on 64 px images. It loads exactly like a trained export.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

IMAGE_SIZE = 64  # px, square, after resize and center crop


def build_tiny_align(
    out_dir: str | Path, tokenizer_dir: str | Path, seed: int = 0, image_size: int = IMAGE_SIZE
) -> Path:
    """Save AlignModel + AlignProcessor (EfficientNet image processor, the given tokenizer)."""
    import torch
    from transformers import (
        AlignConfig,
        AlignModel,
        AlignProcessor,
        AutoTokenizer,
        EfficientNetImageProcessor,
    )

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    width = 0.25  # of EfficientNet-B0's channels: the last stage has 320 * 0.25 = 80
    config = AlignConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 64,
            # at transformers' 0.02 a random 1-layer BERT maps every caption to nearly the same
            # [CLS] (cosine 0.999998): all ties. 0.5 spreads them (median cosine ~0.8).
            "initializer_range": 0.5,
        },
        vision_config={
            "image_size": image_size,
            "width_coefficient": width,
            "depth_coefficient": 1.0,
            "num_block_repeats": [1] * 7,
            "hidden_dim": 128,
        },
        projection_dim=80,  # must equal the image embedding size: the vision tower has no head
    )
    torch.manual_seed(seed)
    model = AlignModel(config).eval()
    # transformers draws conv weights from N(0, 0.02): each stage then shrinks activations ~1e-4x
    # and a random tower's image embeddings underflow to zero. He init keeps them O(1).
    for module in model.vision_model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    square = {"height": image_size, "width": image_size}
    image_processor = EfficientNetImageProcessor(
        size=square, crop_size=square, do_center_crop=True, include_top=False
    )
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    AlignProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir


def build_tiny_tokenizer(out_dir: str | Path, texts: Iterable[str], vocab_size: int = 1000) -> Path:
    """A cased WordPiece BertTokenizerFast (64 tokens) trained in-process on `texts`."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast
    from transformers.models.bert.tokenization_bert import load_vocab

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    trainer.train_from_iterator(list(texts), vocab_size=vocab_size, show_progress=False)
    trainer.save_model(str(out_dir))
    tokenizer = BertTokenizerFast(
        vocab=dict(load_vocab(out_dir / "vocab.txt")),
        do_lower_case=False,
        strip_accents=False,
        model_max_length=64,
    )
    tokenizer.save_pretrained(out_dir)
    return out_dir
