"""Image transforms: the paper's training augmentation and evaluation crop, at any image size.

ALIGN resizes every image to 346 x 346 (aspect ratio not kept), then crops 289 x 289: at a
random position with a random horizontal flip in training, in the center for evaluation.
Other image sizes keep the 346/289 ratio. Pixels leave the loader as uint8 (4x less to copy)
and become floats in [-1, 1] on the training device.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

RESIZE_RATIO = 346 / 289  # the paper's resize over crop size
RESAMPLE = Image.Resampling.BICUBIC


def resize_size(image_size: int) -> int:
    """Side of the square resize before cropping: 346 for the paper's 289, 77 for 64."""
    return round(image_size * RESIZE_RATIO)


def decode_image(payload: bytes, draft_size: int | None = None) -> Image.Image:
    """Encoded bytes -> RGB image. Raises on anything PIL cannot fully decode.

    draft_size lets a JPEG decode at a reduced scale no smaller than that side (much faster
    for large photos; the result is resized anyway).
    """
    image = Image.open(io.BytesIO(payload))
    if draft_size and image.format == "JPEG":
        image.draft("RGB", (draft_size, draft_size))
    return image.convert("RGB")


def train_crop(
    image: Image.Image, image_size: int, offset: tuple[int, int], flip: bool
) -> np.ndarray:
    """Resize to (R, R), crop S x S at offset (x, y) in [0, R - S], maybe flip -> (3, S, S) uint8."""
    side = resize_size(image_size)
    pixels = np.asarray(image.resize((side, side), RESAMPLE))
    x, y = offset
    crop = pixels[y : y + image_size, x : x + image_size]
    if flip:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop.transpose(2, 0, 1))


def center_offset(image_size: int) -> int:
    """x and y of the center S x S crop in the (R, R) resize: (R - S) // 2."""
    return (resize_size(image_size) - image_size) // 2


def eval_crop(image: Image.Image, image_size: int) -> np.ndarray:
    """Resize to (R, R) and take the center S x S crop -> (3, S, S) uint8."""
    start = center_offset(image_size)
    return train_crop(image, image_size, (start, start), flip=False)


def random_crops(
    rng: np.random.Generator, n: int, image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """n crop offsets (n, 2) and flips (n,) drawn from rng: the augmentation of n images."""
    room = resize_size(image_size) - image_size
    return rng.integers(0, room + 1, size=(n, 2)), rng.random(n) < 0.5


def to_model_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) uint8 -> float32 in [-1, 1], on pixels' device."""
    return pixels.float().mul_(1 / 127.5).sub_(1.0)


def image_processor(image_size: int):
    """The transformers image processor that reproduces eval_crop + to_model_pixels."""
    from transformers import EfficientNetImageProcessor

    side = resize_size(image_size)
    return EfficientNetImageProcessor(
        size={"height": side, "width": side},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=True,
        resample=int(RESAMPLE),
        do_rescale=True,
        rescale_factor=1 / 127.5,
        rescale_offset=True,
        do_normalize=False,
        include_top=False,
    )
