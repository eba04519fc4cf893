"""Pixel regions the bench swaps, deletes or scores: a map's Otsu or top-k% region, a random blob."""

from __future__ import annotations

import cv2
import numpy as np

from ..scoring import binarize_heatmap


def as_uint8(m: np.ndarray) -> np.ndarray:
    """A map's positive part scaled to 0..255 (its max -> 255); all-zero stays zero."""
    m = np.maximum(np.nan_to_num(np.asarray(m, np.float64)), 0.0)
    top = m.max(initial=0.0)
    return np.zeros(m.shape, np.uint8) if top <= 0 else np.rint(m / top * 255).astype(np.uint8)


def otsu_region(m: np.ndarray) -> np.ndarray:
    """Pixels above Otsu's threshold of the map's positive part (empty for an all-zero map)."""
    u = as_uint8(m)
    return np.zeros(u.shape, bool) if u.max() == 0 else binarize_heatmap(u)


def ranking(m: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Flat pixel indices from most to least relevant; ties (flat LIME superpixels) in a seeded
    random order, so a superpixel is not removed top row first."""
    flat = np.asarray(m, np.float64).ravel()
    tie = (rng or np.random.default_rng(0)).random(flat.size)
    return np.lexsort((tie, -flat))


def top_fraction_region(m: np.ndarray, fraction: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """The ``fraction`` most relevant pixels (rounded; at least one when ``fraction`` > 0)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    k = int(round(fraction * m.size))
    if fraction > 0:
        k = max(k, 1)
    out = np.zeros(m.size, bool)
    out[ranking(m, rng)[:k]] = True
    return out.reshape(m.shape)


def random_blob_region(shape: tuple[int, int], n_pixels: int, rng: np.random.Generator,
                       smooth: float = 0.08) -> np.ndarray:
    """``n_pixels`` pixels forming smooth random blobs (top of Gaussian-blurred noise, sigma =
    ``smooth`` x the side): a region shaped like a face part, not salt-and-pepper noise a CNN
    reacts to differently."""
    h, w = shape
    n_pixels = int(np.clip(n_pixels, 0, h * w))
    noise = rng.standard_normal((h, w)).astype(np.float32)
    field = cv2.GaussianBlur(noise, (0, 0), max(0.5, smooth * max(h, w)))
    out = np.zeros(h * w, bool)
    out[np.argsort(-field.ravel(), kind="stable")[:n_pixels]] = True
    return out.reshape(shape)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A binary mask at ``size`` x ``size`` (nearest: stays binary)."""
    m = np.asarray(mask).astype(np.uint8)
    if m.shape != (size, size):
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
    return m > 0
