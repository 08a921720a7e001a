"""Synthetic scenes: what an image shows, as data, and how it is drawn.

A scene is a background colour and one or two groups of identical objects; a group has a
shape, a colour, a size, a count (1 to 3) and a position. Captions (`mling/synthetic/captions.py`) are
generated from the same `Scene`, so an image and its caption agree by construction, and only a
caption read in full (shape, colour, size, count, position and background) pins an image down.

Drawing adds what real photos have and captions do not mention: jitter in position, size,
rotation and shade, uneven lighting, pixel noise and JPEG compression.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circle", "square", "triangle", "star", "heart", "cross", "diamond")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
BACKGROUNDS = ("white", "grey", "black", "beige")
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "centre")
COUNTS = (1, 2, 3)
# Two groups never share a region: only opposite sides are combined.
GROUP_PAIRS = (("left", "right"), ("right", "left"), ("top", "bottom"), ("bottom", "top"))

RGB = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (35, 70, 220),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 180),
    "orange": (250, 140, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "grey": (128, 128, 128),
    "beige": (225, 205, 160),
}
# Objects of these colours vanish on the same background, so scenes never pair them.
CLASHES = {("white", "white"), ("black", "black"), ("white", "beige"), ("yellow", "beige")}

RADIUS = {"small": 0.075, "large": 0.13}  # object radius, fraction of the image side
CENTRES = {  # group centre, fractions of (width, height)
    "left": (0.27, 0.5),
    "right": (0.73, 0.5),
    "top": (0.5, 0.27),
    "bottom": (0.5, 0.73),
    "centre": (0.5, 0.5),
}


@dataclass(frozen=True)
class Group:
    shape: str  # one of SHAPES
    colour: str  # one of COLOURS
    size: str  # one of SIZES
    count: int  # identical objects in the group, 1 to 3
    position: str  # one of POSITIONS: where the group's centre lies


@dataclass(frozen=True)
class Scene:
    background: str  # one of BACKGROUNDS
    groups: tuple[Group, ...]  # one or two groups, at distinct positions

    def describe(self) -> str:
        """A language-neutral key: two scenes with the same key have the same captions."""
        parts = [f"{g.count} {g.size} {g.colour} {g.shape} {g.position}" for g in self.groups]
        return " + ".join(parts) + f" on {self.background}"


def sample_scene(rng: random.Random, two_groups: float = 0.0) -> Scene:
    """A uniformly random scene; with probability `two_groups` it has two groups."""
    background = rng.choice(BACKGROUNDS)
    two = rng.random() < two_groups
    positions = rng.choice(GROUP_PAIRS) if two else (rng.choice(POSITIONS),)
    groups = []
    for position in positions:
        colour = rng.choice([c for c in COLOURS if (c, background) not in CLASHES])
        groups.append(
            Group(rng.choice(SHAPES), colour, rng.choice(SIZES), rng.choice(COUNTS), position)
        )
    return Scene(background, tuple(groups))


def _shape_points(shape: str, cx: float, cy: float, r: float, angle: float) -> list:
    """Polygon vertices (pixels) of `shape` centred at (cx, cy) with radius r."""
    if shape == "square":
        base = [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]
    elif shape == "diamond":
        base = [(0, -1.0), (0.7, 0), (0, 1.0), (-0.7, 0)]
    elif shape == "triangle":
        base = [(0, -1.0), (0.95, 0.75), (-0.95, 0.75)]
    elif shape == "star":
        base = [
            (
                (1.0 if i % 2 == 0 else 0.42) * math.sin(i * math.pi / 5),
                -(1.0 if i % 2 == 0 else 0.42) * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
    elif shape == "cross":
        a, b = 0.32, 0.95
        base = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b),
                (-a, a), (-b, a), (-b, -a), (-a, -a)]  # fmt: skip
    elif shape == "heart":
        base = []
        for i in range(24):
            t = 2 * math.pi * i / 24
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            base.append((x / 16, -(y + 2) / 15))
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * cos - y * sin), cy + r * (x * sin + y * cos)) for x, y in base]


def _layout(count: int, position: str, r: float) -> list[tuple[float, float]]:
    """Object centres (fractions) of a group: a column on the sides, a row at top and bottom,
    a triangle in the centre; spaced so objects of radius r do not touch."""
    cx, cy = CENTRES[position]
    step = 2.3 * r
    offsets = [(k - (count - 1) / 2) * step for k in range(count)]
    if position in ("left", "right"):
        return [(cx, cy + o) for o in offsets]
    if position in ("top", "bottom") or count < 3:
        return [(cx + o, cy) for o in offsets]
    return [(cx - step / 2, cy + step / 3), (cx + step / 2, cy + step / 3), (cx, cy - step * 0.6)]


def _shade(rgb: tuple[int, int, int], rng: random.Random, spread: int) -> tuple[int, int, int]:
    """A nearby shade: a common brightness shift plus a smaller tint per channel."""
    light = rng.randint(-spread, spread)
    tint = spread // 3
    return tuple(max(0, min(255, c + light + rng.randint(-tint, tint))) for c in rgb)


def render_scene(
    scene: Scene, rng: random.Random, width: int = 64, height: int | None = None
) -> Image.Image:
    """Draw `scene` as an RGB image of width x height pixels (square by default).

    Each group's shapes are drawn as a mask at 4x and box-downsampled, so small shapes keep
    an antialiased outline. A non-square canvas (the extreme-aspect noise) stretches the layout.
    """
    height = height or width
    scale = 4
    base = np.array(_shade(RGB[scene.background], rng, 12), dtype=np.float32)
    pixels = np.clip(base + _lighting(rng, width, height)[:, :, None], 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    w, h = width * scale, height * scale
    side = min(w, h)
    for group in scene.groups:
        r = RADIUS[group.size] * side * rng.uniform(0.9, 1.1)
        # Squares and diamonds differ only by a 45 degree turn, so rotation stays small.
        angle = math.radians(rng.uniform(-12, 12))
        dx, dy = rng.uniform(-0.035, 0.035), rng.uniform(-0.035, 0.035)
        mask = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(mask)
        for fx, fy in _layout(group.count, group.position, r / side):
            cx = (fx + dx + rng.uniform(-0.01, 0.01)) * w
            cy = (fy + dy + rng.uniform(-0.01, 0.01)) * h
            if group.shape == "circle":
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
            else:
                draw.polygon(_shape_points(group.shape, cx, cy, r, angle), fill=255)
        image.paste(_shade(RGB[group.colour], rng, 20), mask=mask.reduce(scale))
    return _add_noise(image, rng)


def _lighting(rng: random.Random, width: int, height: int) -> np.ndarray:
    """(height, width) float32 brightness offsets: three smooth waves of random direction and
    phase, 0.3 to 1.5 cycles across the image, up to +-33 levels in all.

    Real photos differ in their low frequencies even when they show the same thing; without
    this, two scenes that differ only in colour look alike to a perceptual hash (it sees grey
    levels at low frequency), and the near-duplicate filter would drop clean pairs."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    field = np.zeros((height, width), dtype=np.float32)
    for _ in range(3):
        angle, cycles = rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 1.5)
        fx, fy = cycles * math.cos(angle), cycles * math.sin(angle)
        phase = rng.uniform(0, 2 * math.pi)
        field += 11.0 * np.cos(2 * math.pi * (fx * x + fy * y) + phase)
    return field


def _add_noise(image: Image.Image, rng: random.Random) -> Image.Image:
    """Gaussian pixel noise (sigma 3 to 9 of 255) and, sometimes, a slight blur: what sensors
    and resizing do to real photos. Seeded from `rng`, so the same scene draws the same."""
    noise = np.random.default_rng(rng.getrandbits(63)).normal(
        0, rng.uniform(3, 9), (image.height, image.width, 3)
    )
    pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    noisy = Image.fromarray(pixels, "RGB")
    return noisy.filter(ImageFilter.SMOOTH) if rng.random() < 0.2 else noisy


def encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """Encoded image bytes, JPEG (quality 1-95) or PNG."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()
