"""Image embeddings computed once, for a frozen image tower with a deterministic transform.

With `--freeze image`, `--crop center` and `--flip false`, a training image always reaches the
tower as the same pixels, and the tower never changes: its embedding is a constant of the run.
Before step 1 each distinct image of the training data is decoded and embedded once; the
loader then hashes each row's image bytes instead of decoding them, and the step reads the
embedding (LiT's cost is then the text tower's alone).

The cache is one file in the run folder, `OUTPUT_DIR/image-cache/embeds.pt`, written
atomically (a kill leaves the previous file or none). It is keyed by the image bytes (a
16-byte blake2b digest per distinct image: two artists' drawings of one emoji share an
`image_id` but not their bytes) together with one fingerprint of the tower's weights and
buffers, the transform and the precision: a run whose tower or transform differs rebuilds it,
a resumed run reads it, and images the file lacks (new data) are embedded and added. Images
that cannot be decoded are recorded too, so the loader skips them as `corrupt_image`, as the
decoding loader would. Embeddings live in memory (N x D floats): sets of millions of images,
not billions.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mling.common.atomic import write_atomic
from mling.training.transforms import (
    RESAMPLE,
    decode_image,
    eval_crop,
    resize_size,
    to_model_pixels,
)

CACHE_DIR = "image-cache"  # a run entry (run_dir.RUN_ENTRIES)
CACHE_FILE = "embeds.pt"
DIGEST_BYTES = 16


def image_digest(payload: bytes) -> bytes:
    """Encoded image bytes -> their 16-byte blake2b digest, the cache's key for the image."""
    return hashlib.blake2b(payload, digest_size=DIGEST_BYTES).digest()


def cache_wanted(frozen: list[str] | tuple[str, ...], crop: str, flip: bool) -> str | None:
    """None when a frozen image tower sees fixed pixels (the cache can serve it), else why
    not, in words for the training log."""
    if "image" not in frozen:
        return "the image tower trains"
    changing = [f"--crop {crop}"] if crop != "center" else []
    changing += ["--flip true"] if flip else []
    if changing:
        return (
            f"{' and '.join(changing)} change each image at every step; --crop center "
            "--flip false gives the frozen tower fixed pixels"
        )
    return None


def cache_key(vision_model: torch.nn.Module, image_size: int, precision: str) -> str:
    """A fingerprint of everything an image's embedding depends on besides its bytes: the
    tower's parameters and buffers (names, shapes, values), the transform, the precision."""
    digest = hashlib.sha256()
    transform = {"resize": resize_size(image_size), "crop": image_size, "position": "center",
                 "flip": False, "resample": int(RESAMPLE), "precision": precision}  # fmt: skip
    digest.update(json.dumps(transform, sort_keys=True).encode())
    state = vision_model.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class ImageCache:
    """Distinct images' embeddings: digests (N,) of 16 bytes, embeds (N, D) float32 on the host,
    L2-normalized as the tower's forward returns them, and the digests that did not decode."""

    key: str
    digests: list[bytes] = field(default_factory=list)
    embeds: torch.Tensor = field(default_factory=lambda: torch.empty(0, 0))
    failed: set[bytes] = field(default_factory=set)

    def index(self) -> dict[bytes, int]:
        """digest -> row of embeds; what the loader needs to find an image's embedding."""
        return {digest: row for row, digest in enumerate(self.digests)}

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(
            {
                "key": self.key,
                "digests": _as_tensor(b"".join(self.digests)),
                "embeds": self.embeds.contiguous(),
                "failed": _as_tensor(b"".join(sorted(self.failed))),
            },
            buffer,
        )
        return buffer.getvalue()

    @classmethod
    def load(cls, path: Path) -> ImageCache | None:
        """The cache at path, or None when there is none or it cannot be read (a rebuild)."""
        try:
            saved = torch.load(path, weights_only=True)
            digests, failed = saved["digests"].numpy().tobytes(), saved["failed"].numpy().tobytes()
            return cls(
                saved["key"],
                [digests[i : i + DIGEST_BYTES] for i in range(0, len(digests), DIGEST_BYTES)],
                saved["embeds"],
                {failed[i : i + DIGEST_BYTES] for i in range(0, len(failed), DIGEST_BYTES)},
            )
        except (OSError, RuntimeError, KeyError, EOFError, ValueError):
            return None


def _as_tensor(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy())


def _embed(model, payloads: list[bytes], image_size: int, device, autocast) -> tuple[list, list]:
    """Decode, center-crop and embed one batch -> (embeddings (n, D) rows, failed indices)."""
    pixels, failed = [], []
    draft = resize_size(image_size)
    for i, payload in enumerate(payloads):
        try:
            pixels.append(eval_crop(decode_image(payload, draft), image_size))
        except Exception:  # PIL raises a dozen types for broken bytes; all mean "skip"
            failed.append(i)
    if not pixels:
        return [], failed
    batch = to_model_pixels(torch.from_numpy(np.stack(pixels)).to(device))
    with torch.no_grad(), autocast():
        image_embeds = model(batch, None, None)[0]
    return list(image_embeds.float().cpu()), failed


def build_image_cache(
    accelerator, model, image_payloads, path: Path, key: str, image_size: int, batch: int = 256
) -> ImageCache:
    """The run's cache, read from `path` when its key matches, with every image of
    `image_payloads` (an iterable over batches of encoded bytes, the whole training data, the
    same on every process) that it lacks embedded by `model` (a DualEncoder in eval mode for
    its image tower) and the file rewritten. Each process embeds the images whose digest falls
    to it; every process returns the whole cache."""
    from accelerate.utils import gather_object

    started = time.perf_counter()
    old = ImageCache.load(path)
    cache = old if old is not None and old.key == key else ImageCache(key)
    if old is None:
        status = "rebuilt: the file was unreadable" if path.exists() else "new"
    elif old.key != key:
        status = "rebuilt: the tower, transform or precision changed"
    else:
        status = f"{len(old.digests)} read from the run folder"
    known = set(cache.digests) | cache.failed
    rank, world = accelerator.process_index, accelerator.num_processes
    mine_digests, mine_embeds, mine_failed, pending = [], [], [], []
    seen: set[bytes] = set()

    def flush() -> None:
        embeds, failed = _embed(
            model, [p for _, p in pending], image_size, accelerator.device, accelerator.autocast
        )
        undecodable = set(failed)
        mine_digests.extend(d for i, (d, _) in enumerate(pending) if i not in undecodable)
        mine_embeds.extend(embeds)
        mine_failed.extend(pending[i][0] for i in failed)
        pending.clear()

    for payloads in image_payloads:
        for payload in payloads:
            if payload is None:
                continue
            digest = image_digest(payload)
            if digest in known or digest in seen:
                continue
            seen.add(digest)
            if digest[0] % world == rank:  # an even, deterministic share per process
                pending.append((digest, payload))
                if len(pending) == batch:
                    flush()
    if pending:
        flush()
    new = len(seen)
    parts = gather_object([(mine_digests, mine_embeds, mine_failed)])
    digests = [d for part in parts for d in part[0]]
    embeds = [e for part in parts for e in part[1]]
    cache.failed |= {d for part in parts for d in part[2]}
    if embeds:
        stacked = torch.stack(embeds)
        cache.embeds = torch.cat([cache.embeds, stacked]) if cache.digests else stacked
        cache.digests = cache.digests + digests
    if new and accelerator.is_main_process:
        write_atomic(path, cache.to_bytes())
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        undecodable = f", {len(cache.failed)} undecodable" if cache.failed else ""
        print(
            f"train.py: image-embedding cache {path.parent.name}/{path.name}: "
            f"{len(cache.digests)} images ({status}, {len(digests)} embedded now{undecodable}) "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return cache
