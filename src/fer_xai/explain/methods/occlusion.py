"""Occlusion sensitivity (Zeiler & Fergus 2014): how much the class probability drops under a patch.

A square patch (``patch`` of the input side) slides with ``stride``; each pixel's relevance is
the mean drop of the explained class's probability over the patches that cover it. The patched
images of all faces are classified together in batches of ``explain.batch_size``.
"""

from __future__ import annotations

import numpy as np

from ...config import OcclusionMethodParams
from .base import MethodResult, as_classes, as_images, blurred, equal_batches, predictor


def patch_masks(size: int, patch: float, stride: float) -> np.ndarray:
    """(K, size, size) bool: every patch position, the last row and column flush with the border."""
    p = min(size, max(1, round(patch * size)))
    st = max(1, round(stride * size))
    starts = list(range(0, size - p + 1, st))
    if starts[-1] != size - p:
        starts.append(size - p)
    masks = np.zeros((len(starts) ** 2, size, size), bool)
    for k, (r, c) in enumerate((r, c) for r in starts for c in starts):
        masks[k, r:r + p, c:c + p] = True
    return masks


class OcclusionExplainer:
    def __init__(self, name: str, settings: OcclusionMethodParams, batch_size: int):
        self.name, self.settings, self.batch_size = name, settings, int(batch_size)

    def explain(self, model, images, classes, seed: int, image_ids=None, progress: str | None = None) -> MethodResult:
        from tqdm.auto import tqdm

        x = as_images(images)
        labels = as_classes(classes, len(x))
        s, predict = self.settings, predictor(model)
        if not len(x):
            return MethodResult(self.name, np.zeros(x.shape, np.float32), np.zeros((0, 6), np.float32), labels)
        if x.shape[1] != x.shape[2]:
            raise ValueError(f"occlusion expects square images, got {x.shape[1:]}")
        masks = patch_masks(x.shape[1], s.patch, s.stride)
        weights = masks.astype(np.float32)
        cover = weights.sum(0)
        fills = blurred(x, s.blur_sigma) if s.fill == "blur" else np.full(x.shape, s.hide_color, np.float32)
        probs = np.concatenate([np.asarray(predict(x[rows][..., None]))
                                for rows in equal_batches(len(x), self.batch_size)])
        # Every (image, patch) pair in equal batches across images: no short per-image tail batch.
        img_of, patch_of = np.divmod(np.arange(len(x) * len(masks)), len(masks))
        drop = np.empty(len(img_of), np.float32)
        for rows in tqdm(list(equal_batches(len(img_of), self.batch_size)), desc=progress or self.name,
                         disable=progress is None, unit="batch"):
            i, k = img_of[rows], patch_of[rows]
            batch = np.where(masks[k], fills[i], x[i])[..., None]
            drop[rows] = probs[i, labels[i]] - np.asarray(predict(batch))[np.arange(len(rows)), labels[i]]
        maps = (drop.reshape(len(x), len(masks)) @ weights.reshape(len(masks), -1)).reshape(x.shape) / cover
        probs = probs.astype(np.float32)
        return MethodResult(self.name, maps, probs, labels)
