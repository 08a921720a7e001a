"""Batched image and caption embeddings of an AlignModel directory, cached on disk.

The cache key is the model (config, weights, processor files: name, size, mtime) and the data
(image files: path, size, mtime; captions: their text), so a second run on the same model and
data loads (B, D) tensors instead of running the towers, and any change misses the cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from mling.common.atomic import write_atomic
from mling.common.errors import InputError, first_line
from mling.common.field_options import add_options, at_least, from_args, option
from mling.common.hub import Source, resolve_source
from mling.common.text import nfc
from mling.common.weights import weights_problem
from mling.evaluation.image_files import load_rgb

CACHE_VERSION = 1  # bump when the embedding code changes what it computes
MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)


@dataclass
class EmbedConfig:
    """How embeddings are computed (the evaluators' options, mling/common/field_options.py)."""

    batch_size: int = option(64, "images or captions per forward pass", check=at_least(1))
    device: str = option("auto", "auto (cuda when available, else cpu), cpu, cuda, cuda:1, ...")
    cache_dir: Path | None = None  # where embeddings are kept between runs; None: no cache
    workers: int = option(2, "threads decoding images", check=at_least(1))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model/--name and the embedding options every evaluation entry point shares."""
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="AlignModel directory (mling/train.py's OUTPUT_DIR/model) or hub id; repeat",
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        help="report name of each --model, in order (default: its folder name)",
    )
    parser.add_argument("--output", required=True, help="report folder (local)")
    embedding = add_options(parser, EmbedConfig, "embedding")
    embedding.add_argument(
        "--cache", type=Path, default=None, help="embedding cache folder (default: OUTPUT/cache)"
    )
    embedding.add_argument("--no-cache", action="store_true", help="always recompute embeddings")


def language_list(text: str) -> list[str]:
    """argparse type of --languages: "en, de,ja" -> ["en", "de", "ja"]."""
    return [language.strip() for language in text.split(",") if language.strip()]


def embed_config(args: argparse.Namespace) -> EmbedConfig:
    cache = None if args.no_cache else (args.cache or args.output / "cache")
    cfg = from_args(EmbedConfig, args, cache_dir=cache)  # --batch-size 0: one line
    resolve_device(cfg.device)  # a wrong --device fails before any data is read
    return cfg


def model_names(models: Sequence[str | Path], names: Sequence[str]) -> dict[str, Source]:
    """Report name -> where the model is (a folder, or a hub id resolved into the cache).

    A directory called `model` (mling/train.py's export) is named after its parent:
    demo-output/mling/model -> "mling"; a hub id after its last part: org/align-base ->
    "align-base"."""
    if names and len(names) != len(models):
        raise InputError(
            f"{len(names)} --name for {len(models)} --model; give one per model or none"
        )
    sources = [resolve_source(model, "--model") for model in models]
    if not names:
        names = [
            s.hub_id.split("/")[-1]
            if s.hub_id
            else (
                s.path.parent.name if s.path.name == "model" and s.path.parent.name else s.path.name
            )
            for s in sources
        ]
    named: dict[str, Source] = {}
    for name, source in zip(names, sources, strict=True):
        check_align_dir(source.path, source.describe())
        if name in named:
            raise InputError(f"two models are named {name!r}; tell them apart with --name")
        named[name] = source
    return named


def resolve_device(device: str) -> torch.device:
    """ "auto" is cuda when torch sees a GPU, else cpu; anything else must exist here."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise InputError(
            f"--device {device!r} is not a torch device; try auto, cpu or cuda"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device} but torch sees no CUDA GPU; pass --device auto or cpu")
    return resolved


AGAIN = "export the model again (mling/export.py) or download it again"


def check_align_dir(model_dir: Path, shown: str | None = None) -> None:
    """One InputError line unless `model_dir` holds an AlignModel config and whole weights
    (their headers read, `mling/common/weights.py`); cheap, so every --model is checked before
    the first one runs. `shown` names it in errors (a hub id)."""
    config = model_dir / "config.json"
    if not config.is_file():
        raise InputError(
            f"{shown or model_dir} has no config.json; pass an AlignModel directory "
            "(mling/train.py writes one to OUTPUT_DIR/model) or hub id"
        )
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise InputError(f"{config} is not valid JSON; re-export the model") from None
    if model_type != "align":
        raise InputError(
            f"{model_dir} holds a {model_type!r} model, not an AlignModel; pass the "
            "model folder that mling/train.py exports"
        )
    from huggingface_hub.errors import StrictDataclassError
    from transformers import AlignConfig

    try:  # its values too: `"text_config": 5` fails here, not halfway through an evaluation
        AlignConfig.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError, KeyError, StrictDataclassError) as error:
        raise InputError(
            f"{config} is not a usable AlignModel config ({first_line(error)}); {AGAIN}"
        ) from None
    problem = weights_problem(model_dir)
    if problem:
        raise InputError(f"{shown or model_dir}: {problem}; {AGAIN}")


def load_align(model_dir: str | Path, device: str | torch.device = "cpu"):
    """(AlignModel in eval mode on `device`, AlignProcessor) or a one-line InputError."""
    model_dir = Path(model_dir)
    check_align_dir(model_dir)
    from transformers import AlignModel, AlignProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per model load drowns the evaluation's own log

    try:
        processor = AlignProcessor.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError) as error:
        raise InputError(
            f"{model_dir} has no usable AlignProcessor (image processor + tokenizer) "
            f"({first_line(error)}); save one with processor.save_pretrained"
        ) from None
    from huggingface_hub.errors import StrictDataclassError
    from safetensors import SafetensorError

    try:
        model = AlignModel.from_pretrained(model_dir)
    except (OSError, ValueError, RuntimeError, SafetensorError, StrictDataclassError) as error:
        raise InputError(
            f"{model_dir} weights do not load as an AlignModel "
            f"({first_line(error)}); re-export the model"
        ) from None
    return model.to(resolve_device(device)).eval(), processor


def _pooled(output) -> torch.Tensor:
    """get_*_features returns a tensor in transformers 4 and an output object in 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_stamp(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


class Embedder:
    """One model on its device; `images(paths)` -> (N, D), `texts(captions)` -> (M, D), both
    L2-normalized float32 on the CPU, read from the cache when model and data are unchanged."""

    def __init__(self, model_dir: str | Path, cfg: EmbedConfig, log=None):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.model, self.processor = load_align(model_dir, self.device)
        stamps = [_file_stamp(p) for name in MODEL_FILES if (p := Path(model_dir) / name).is_file()]
        self.fingerprint = _digest([CACHE_VERSION, stamps])
        self.log = log or (lambda message: print(message, file=sys.stderr))
        tokenizer = self.processor.tokenizer
        # a tokenizer saved without a limit reports a huge sentinel; ALIGN's captions are short
        self.max_length = min(int(tokenizer.model_max_length or 64), 512)

    # cache

    def _cached(self, kind: str, data_key: object, compute) -> torch.Tensor:
        if self.cfg.cache_dir is None:
            return compute()
        from safetensors import SafetensorError
        from safetensors.torch import load_file, save

        path = (
            Path(self.cfg.cache_dir)
            / f"{kind}-{_digest([self.fingerprint, kind, data_key])}.safetensors"
        )
        if path.is_file():
            try:
                embeds = load_file(path)["embeds"]
                self.log(f"  {kind} embeddings from the cache")
                return embeds
            except (SafetensorError, KeyError):  # damaged outside our atomic writes (a copy)
                self.log(f"  {kind} embeddings in the cache are damaged; computing them again")
        embeds = compute()
        write_atomic(path, save({"embeds": embeds.contiguous()}))
        return embeds

    # towers

    def images(self, paths: Sequence[Path]) -> torch.Tensor:
        """(N, D) image_embeds of the image files, in order."""
        stamps = [_file_stamp(Path(p)) for p in paths]
        return self._cached("image", stamps, lambda: self._embed_images(list(paths)))

    def texts(self, captions: Sequence[str]) -> torch.Tensor:
        """(M, D) text_embeds of the captions, in order."""
        key = hashlib.sha256("\n\x00".join(captions).encode("utf-8")).hexdigest()
        return self._cached(
            "text", [key, self.max_length], lambda: self._embed_texts(list(captions))
        )

    @torch.inference_mode()
    def _embed_images(self, paths: list[Path]) -> torch.Tensor:
        start, out = time.perf_counter(), []
        image_processor = self.processor.image_processor
        with ThreadPoolExecutor(max(1, self.cfg.workers)) as pool:
            batches = (
                paths[i : i + self.cfg.batch_size]
                for i in range(0, len(paths), self.cfg.batch_size)
            )
            # decode the next batch while the model runs on this one
            pending = None
            for batch in batches:
                decoded = pool.map(load_rgb, batch)
                if pending is not None:
                    out.append(self._image_forward(image_processor, list(pending)))
                pending = decoded
            if pending is not None:
                out.append(self._image_forward(image_processor, list(pending)))
        self.log(f"  {len(paths)} images in {time.perf_counter() - start:.1f} s")
        return torch.cat(out)

    def _image_forward(self, image_processor, images) -> torch.Tensor:
        pixel_values = image_processor(images, return_tensors="pt")["pixel_values"]
        # NHWC: about 2x faster EfficientNet on CPU; the weights are untouched.
        pixel_values = pixel_values.to(self.device).contiguous(memory_format=torch.channels_last)
        embeds = _pooled(self.model.get_image_features(pixel_values=pixel_values))
        return F.normalize(embeds.float(), dim=-1).cpu()

    @torch.inference_mode()
    def _embed_texts(self, captions: list[str]) -> torch.Tensor:
        start = time.perf_counter()
        # sorted by length, each batch pads only to its own longest caption
        order = sorted(range(len(captions)), key=lambda j: len(captions[j]))
        embeds = torch.empty(0)
        for i in range(0, len(order), self.cfg.batch_size):
            rows = order[i : i + self.cfg.batch_size]
            tokens = self.processor.tokenizer(
                [nfc(captions[j]) for j in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            features = self.model.get_text_features(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            )
            batch = F.normalize(_pooled(features).float(), dim=-1).cpu()
            if embeds.numel() == 0:
                embeds = torch.empty(len(captions), batch.shape[1])
            embeds[rows] = batch
        self.log(f"  {len(captions)} captions in {time.perf_counter() - start:.1f} s")
        return embeds
