"""RISE (Petsiuk et al. 2018): relevance = the class probability averaged over random soft masks.

The map is RISE's saliency less the mean masked probability (what an irrelevant pixel scores), so
that positive values are evidence for the class, as for the other methods.

Each mask is a random ``grid`` x ``grid`` on/off pattern (on with probability ``p``), upsampled
bilinearly to a cell larger than the image and shifted at random, so masks are smooth and not
grid-aligned. The masks are drawn from ``seed`` alone: every image and network sees the same ones
(as LIME's perturbations are shared). Masked images are built and classified batch by batch.
"""

from __future__ import annotations

import numpy as np

from ...config import RiseMethodParams
from .base import MethodResult, as_classes, as_images, equal_batches, predictor


def rise_masks(grids: np.ndarray, shifts: np.ndarray, size: int) -> np.ndarray:
    """(B, size, size) float32 soft masks from (B, g, g) on/off grids and (B, 2) pixel shifts."""
    import cv2

    g = grids.shape[1]
    cell = int(np.ceil(size / g))
    big = (g + 1) * cell
    up = cv2.resize(np.ascontiguousarray(grids.transpose(1, 2, 0).astype(np.float32)), (big, big),
                    interpolation=cv2.INTER_LINEAR)
    up = up.reshape(big, big, -1).transpose(2, 0, 1)
    idx = np.arange(size)
    rows, cols = shifts[:, :1] + idx, shifts[:, 1:] + idx  # (B, size) each
    return up[np.arange(len(up))[:, None, None], rows[:, :, None], cols[:, None, :]]


class RiseExplainer:
    def __init__(self, name: str, settings: RiseMethodParams, batch_size: int):
        self.name, self.settings, self.batch_size = name, settings, int(batch_size)

    def explain(self, model, images, classes, seed: int, image_ids=None, progress: str | None = None) -> MethodResult:
        from tqdm.auto import tqdm

        s, predict = self.settings, predictor(model)
        x = as_images(images)
        labels = as_classes(classes, len(x))
        if not len(x):
            return MethodResult(self.name, np.zeros(x.shape, np.float32), np.zeros((0, 6), np.float32), labels)
        size = x.shape[1]
        rng = np.random.default_rng(int(seed))
        grids = rng.random((s.num_masks, s.grid, s.grid)) < s.p
        shifts = rng.integers(0, int(np.ceil(size / s.grid)), (s.num_masks, 2))
        maps, mean_p = np.zeros(x.shape, np.float64), np.zeros(len(x))
        probs = np.asarray(predict(x[..., None])).astype(np.float32)
        for rows in tqdm(list(equal_batches(s.num_masks, self.batch_size)), desc=progress or self.name,
                         disable=progress is None, unit="batch"):
            masks = rise_masks(grids[rows], shifts[rows], size)
            for i in range(len(x)):  # images x mask batches: each call is one batch of masked images
                masked = x[i] * masks + s.hide_color * (1 - masks)
                p = np.asarray(predict(masked[..., None]))[:, labels[i]]
                maps[i] += np.tensordot(p, masks, axes=1)
                mean_p[i] += p.sum()
        # RISE's saliency minus its value where a pixel does not matter (the mean masked probability):
        # positive = the class is more likely when the pixel is shown.
        maps = maps / (s.num_masks * s.p) - (mean_p / s.num_masks)[:, None, None]
        return MethodResult(self.name, maps.astype(np.float32), probs, labels)
