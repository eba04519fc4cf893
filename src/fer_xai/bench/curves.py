"""Deletion and insertion curves (Petsiuk et al. 2018): faithfulness without ground truth.

Deletion: the explained class's probability as the most relevant pixels are replaced by a fill
(black, or the blurred image), ``steps`` equal fractions at a time; a faithful map makes it fall
fast (low area under the curve). Insertion: start from the fill and put the most relevant pixels
back; a faithful map makes it rise fast (high area). A random pixel order is the baseline.
Every image's curve is one batch of ``steps + 1`` images.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from .causal import Predict, batched_probs
from .regions import ranking

Fill = Literal["black", "blur"]


def fill_image(image: np.ndarray, fill: Fill, blur_sigma: float = 0.1) -> np.ndarray:
    """The image that deleted pixels take: zeros, or the image blurred (sigma = ``blur_sigma`` x side)."""
    img = np.asarray(image, np.float32)
    if fill == "black":
        return np.zeros_like(img)
    if fill == "blur":
        return cv2.GaussianBlur(img, (0, 0), max(0.5, blur_sigma * max(img.shape)))
    raise ValueError(f"unknown fill {fill!r}: black or blur")


def curve_images(image: np.ndarray, order: np.ndarray, steps: int, fill: np.ndarray, mode: str) -> np.ndarray:
    """(steps + 1, H, W): step s has the first ``round(s / steps * size)`` pixels of ``order``
    deleted (``mode='deletion'``) or inserted into the fill (``'insertion'``)."""
    h, w = image.shape
    size = h * w
    rank = np.empty(size, np.int64)
    rank[order] = np.arange(size)
    cut = np.rint(np.linspace(0, size, steps + 1)).astype(np.int64)
    top = rank[None, :] < cut[:, None]  # (steps + 1, size): pixel among the first cut[s]
    if mode == "deletion":
        out = np.where(top, fill.ravel()[None], image.ravel()[None])
    elif mode == "insertion":
        out = np.where(top, image.ravel()[None], fill.ravel()[None])
    else:
        raise ValueError(f"unknown mode {mode!r}: deletion or insertion")
    return out.reshape(steps + 1, h, w).astype(np.float32)


def auc(curve: np.ndarray) -> float:
    """Trapezoidal area under a curve sampled at equal fractions of [0, 1]."""
    y = np.asarray(curve, np.float64)
    return float(np.trapezoid(y, dx=1.0 / (len(y) - 1))) if len(y) > 1 else float("nan")


def deletion_insertion(predict: Predict, images: np.ndarray, maps: np.ndarray, classes: np.ndarray,
                       steps: int = 10, fill: Fill = "black", seed: int = 0, batch_size: int = 128,
                       random_order: bool = False) -> dict[str, np.ndarray]:
    """Per image: ``deletion``, ``insertion`` (N,) AUCs and the ``*_curve`` (N, steps + 1) arrays.

    ``random_order``: rank the pixels at random (seeded per image), the baseline every map must beat.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    classes = np.asarray(classes, int)
    curves = {"deletion": [], "insertion": []}
    for i in range(len(images)):
        rng = np.random.default_rng([seed, i])
        img = np.asarray(images[i], np.float32)
        m = rng.random(img.shape) if random_order else np.asarray(maps[i], np.float64)
        order = ranking(m, rng)
        f = fill_image(img, fill)
        batch = np.concatenate([curve_images(img, order, steps, f, mode) for mode in curves])
        p = batched_probs(predict, batch, batch_size)[:, classes[i]]
        curves["deletion"].append(p[:steps + 1])
        curves["insertion"].append(p[steps + 1:])
    out: dict[str, np.ndarray] = {}
    for mode, cs in curves.items():
        arr = np.asarray(cs, np.float64).reshape(len(cs), steps + 1)
        out[f"{mode}_curve"] = arr
        out[mode] = np.array([auc(c) for c in arr])
    return out
