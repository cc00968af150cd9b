"""Procedural dSprites: binary 64x64 sprites (square, ellipse, heart) in the official row order.

Geometry. Pixel (row r, column c) is sampled at its centre (c + 0.5, r + 0.5). posX class i puts the
sprite centre at x = 8.75 + 1.5 i (pixels 8.75 .. 55.25, symmetric about the image centre), posY the
same in y (downwards). A sprite of scale s has a half-size of ``HALF_SIZE_PX * s`` pixels and is rotated
counter-clockwise (on screen) by its orientation angle. The heart points down and is not rotation
symmetric, so its 40 orientations all differ.

Speed. Because every centre lies on a quarter pixel (fraction .25 or .75), a sprite's pixels depend
only on (shape, scale, orientation, x fraction, y fraction): 3 x 6 x 40 x 2 x 2 = 2880 windows of
32 x 32 samples. They are rendered once; every image is then one window pasted at an integer offset.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from trainables.data.factors import DSPRITES

HALF_SIZE_PX = 8.0           # a square of scale 1 is 16 px wide
POSITION_START_PX = 8.75
POSITION_STEP_PX = 1.5
WINDOW = 32                  # window side in pixels; a sprite reaches at most 11.3 px from its centre
PAD = WINDOW // 2            # a window starts PAD pixels before floor(sprite centre)


def sprite_centres_px() -> np.ndarray:
    """float64 [32]: the pixel coordinate of the sprite centre for each posX (or posY) class."""
    return POSITION_START_PX + POSITION_STEP_PX * np.arange(DSPRITES.factors[4].size)


def inside_shape(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Is the point (u, v) in sprite units (x right, y down, half-size 1) inside the shape?"""
    if shape == 0:   # square
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == 1:   # ellipse, long axis along x
        return (u / 1.4) ** 2 + (v / 0.7) ** 2 <= 1.0
    # heart: the classic implicit curve (x^2 + y^2 - 1)^3 <= x^2 y^3 with y up, lobes up and the tip down
    x = u / 0.95
    y = -v / 0.95 + 0.12      # centre the heart's bounding box on the sprite centre
    return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0


@lru_cache(maxsize=1)
def sprite_windows() -> np.ndarray:
    """uint8 [3, 6, 40, 2, 2, 32, 32]: the window of every (shape, scale, orientation, fy, fx)."""
    scales = np.asarray(DSPRITES.factors[2].values)
    angles = np.asarray(DSPRITES.factors[3].values)
    fractions = np.array([0.75, 0.25])        # even and odd position classes
    offsets = np.arange(WINDOW) - PAD + 0.5    # sample positions relative to floor(centre)
    # dy/dx: [fy|fx, 32], the sample minus the sprite centre
    delta = offsets[None, :] - fractions[:, None]
    dy = delta[None, :, None, :, None]       # [1, fy, 1, 32, 1]
    dx = delta[None, None, :, None, :]       # [1, 1, fx, 1, 32]
    out = np.zeros((3, len(scales), len(angles), 2, 2, WINDOW, WINDOW), dtype=np.uint8)
    cos = np.cos(angles)[:, None, None, None, None]
    sin = np.sin(angles)[:, None, None, None, None]
    for k, scale in enumerate(scales):
        radius = HALF_SIZE_PX * scale
        # rotate the sample back by the angle (y points down, so on screen this turns the sprite
        # counter-clockwise), then scale to sprite units
        u = (cos * dx - sin * dy) / radius
        v = (sin * dx + cos * dy) / radius
        for shape in range(3):
            out[shape, k] = inside_shape(shape, u, v)
    return out


@lru_cache(maxsize=1)
def _padded_windows() -> tuple[np.ndarray, np.ndarray]:
    """Every window on a zero canvas, viewed as all of its 64 x 64 crops, and each posX's crop start.

    Image pixel row r of a sprite whose window starts at floor(centre) - PAD is canvas row
    r + (CANVAS_OFFSET + PAD - floor(centre)); one crop per image is a pure gather, no scatter.
    """
    windows = sprite_windows().reshape(-1, WINDOW, WINDOW)
    origin = np.floor(sprite_centres_px()).astype(np.int64)
    crop_start = _CANVAS_OFFSET + PAD - origin
    size = int(crop_start.max()) + 64
    canvas = np.zeros((len(windows), size, size), dtype=np.uint8)
    canvas[:, _CANVAS_OFFSET:_CANVAS_OFFSET + WINDOW, _CANVAS_OFFSET:_CANVAS_OFFSET + WINDOW] = windows
    crops = np.lib.stride_tricks.sliding_window_view(canvas, (64, 64), axis=(1, 2))
    return crops, crop_start


_CANVAS_OFFSET = 64


def render_dsprites(classes: np.ndarray) -> np.ndarray:
    """uint8 [n, 64, 64] in {0, 1}: the sprites of factor classes [n, 6] (official column order)."""
    classes = np.asarray(classes, dtype=np.int64)
    crops, crop_start = _padded_windows()
    shape, scale, angle, pos_x, pos_y = (classes[:, k] for k in range(1, 6))
    window = (((shape * 6 + scale) * 40 + angle) * 2 + pos_y % 2) * 2 + pos_x % 2
    return np.ascontiguousarray(crops[window, crop_start[pos_y], crop_start[pos_x]])
