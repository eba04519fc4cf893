"""LIME's perturbations: a seeded on/off matrix and the occluded images, built batch by batch.

The matrix has exactly the layout of ``LimeImageExplainer.data_labels`` (``randint(0, 2,
num_samples * n_features)`` reshaped, first row all ones), so handing lime a ``RandomState``
in the same state reproduces it bit for bit. Each perturbed image is one table lookup
``on[segments]``: no per-sample Python loop, and only ``batch_size`` images exist at a time.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np


def perturbation_rng(seed: int, image_id: str) -> np.random.RandomState:
    """The RNG of one image's perturbations: the same for every model that explains the image.

    Seeded by (explain seed, image id) only, so all networks (and folds) that explain an image
    share one sampling noise and their explanations differ only by the networks.
    """
    return np.random.RandomState((seed * 1_000_003 + zlib.crc32(image_id.encode())) % 2**32)


def perturbation_matrix(n_features: int, num_samples: int, rng: np.random.RandomState) -> np.ndarray:
    """(num_samples, n_features) int64 on/off matrix; row 0 is the unperturbed image."""
    if n_features < 1 or num_samples < 1:
        raise ValueError(f"need n_features >= 1 and num_samples >= 1, got {n_features}, {num_samples}")
    data = rng.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
    data[0, :] = 1
    return data


def perturbed_batches(
    image: np.ndarray, segments: np.ndarray, data: np.ndarray, hide_color: float | np.ndarray = 0.0,
    batch_size: int = 128,
) -> Iterator[np.ndarray]:
    """Yield (B, H, W, 1) float32 images (B <= batch_size): superpixels off in a row take ``hide_color``
    (a constant, or an (H, W) fill image such as the blurred face)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3:
        img = img[..., 0]
    if img.shape != segments.shape:
        raise ValueError(f"image {img.shape} and segments {segments.shape} differ")
    on = data.astype(bool)
    fill = np.asarray(hide_color, dtype=np.float32)
    if fill.ndim and fill.shape != segments.shape:
        raise ValueError(f"fill image {fill.shape} and segments {segments.shape} differ")
    # Equal batches of at most batch_size: a short tail batch would cost a full forward call.
    n_batches = -(-len(on) // batch_size)
    for rows in np.array_split(np.arange(len(on)), n_batches):
        keep = on[rows][:, segments]  # (B, H, W) lookup by segment id
        yield np.where(keep, img, fill)[..., None]
