"""SLIC superpixels of a grayscale face, labelled 0..n-1 as LIME expects."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import relabel_sequential, slic

from ..config import SlicParams


def segment(image: np.ndarray, params: SlicParams | None = None) -> np.ndarray:
    """(H, W) int32 superpixel labels 0..n-1 of a (H, W) grayscale image in [0, 255] or [0, 1].

    LIME numbers its features by ``np.unique(segments)`` and hides ``segments == z`` for
    feature ``z``, so the labels must be exactly 0..n-1: SLIC's are relabelled sequentially.
    """
    p = params or SlicParams()
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"segment() expects a 2-D grayscale image, got shape {image.shape}")
    if img.max() > 1.0:  # [0, 255] images (the models' input range)
        img = img / 255.0
    # SLIC as it runs on the face as an RGB image (what lime and the paper's code hand it): in
    # CIELAB, where the default compactness (10) is calibrated. On raw gray values in [0, 1] the
    # same compactness would give a plain grid of squares.
    labels = slic(
        np.repeat(np.clip(img, 0.0, 1.0)[..., None], 3, axis=-1), n_segments=p.n_segments,
        compactness=p.compactness, sigma=p.sigma, max_num_iter=p.max_num_iter,
        enforce_connectivity=p.enforce_connectivity, channel_axis=-1, convert2lab=True, start_label=0,
    )
    return relabel_sequential(labels)[0].astype(np.int32)
