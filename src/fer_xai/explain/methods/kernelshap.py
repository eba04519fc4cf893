"""KernelSHAP (Lundberg & Lee 2017) on LIME's SLIC superpixels.

Each superpixel is a player; a coalition keeps its superpixels and fills the others (as LIME
does). The Shapley values solve a weighted least squares with the Shapley kernel and the
efficiency constraint sum(phi) = f(x) - f(empty). With few superpixels (2^M - 2 <= num_samples)
every coalition is enumerated and the solution is the exact Shapley value; otherwise coalition
sizes are drawn from the kernel's size distribution (then all weights are equal), each coalition
with its complement (paired sampling), seeded per image.
"""

from __future__ import annotations

import zlib
from math import comb

import numpy as np

from ...config import KernelShapMethodParams
from ..perturb import perturbed_batches
from ..segmentation import segment
from .base import MethodResult, as_classes, as_images, default_ids, predictor
from .lime import fill_image, pad_weights


def coalitions(m: int, num_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(K, m) 0/1 coalitions of sizes 1..m-1 and their regression weights."""
    if m < 2:
        return np.zeros((0, m), np.int8), np.zeros(0)
    sizes = np.arange(1, m)
    if 2**m - 2 <= num_samples:  # every coalition, with the Shapley kernel's weight
        codes = np.arange(1, 2**m - 1, dtype=np.int64)
        z = ((codes[:, None] >> np.arange(m)) & 1).astype(np.int8)
        s = z.sum(1)
        w = (m - 1) / (np.array([comb(m, int(k)) for k in range(m + 1)], float)[s] * s * (m - s))
        return z, w
    p = (m - 1) / (sizes * (m - sizes))
    half = (num_samples + 1) // 2
    drawn = rng.choice(sizes, size=half, p=p / p.sum())
    # A random subset of each drawn size: the first s of a random permutation (one argsort, no loop).
    ranks = np.argsort(rng.random((half, m)), axis=1)
    z = (ranks < drawn[:, None]).astype(np.int8)
    # Paired sampling (each coalition with its complement; the kernel is symmetric in s and m - s):
    # far lower variance, and exact for games with at most pairwise interactions.
    z = np.concatenate([z, 1 - z])[:num_samples]
    return z, np.ones(len(z))


def shapley_from_values(z: np.ndarray, w: np.ndarray, f: np.ndarray, f_full: float, f_empty: float) -> np.ndarray:
    """The constrained weighted least squares: phi with sum(phi) = f_full - f_empty."""
    m = z.shape[1]
    delta = f_full - f_empty
    if m == 1 or len(z) == 0:
        return np.full(m, delta / max(m, 1))
    # Eliminate the last player: phi_m = delta - sum(phi_<m), as the shap package does.
    x = z[:, :-1].astype(np.float64) - z[:, -1:].astype(np.float64)
    y = f - f_empty - z[:, -1] * delta
    sw = np.sqrt(w)
    head = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)[0]
    return np.append(head, delta - head.sum())


class KernelShapExplainer:
    def __init__(self, name: str, settings: KernelShapMethodParams, batch_size: int):
        self.name, self.settings, self.batch_size = name, settings, int(batch_size)

    def explain(self, model, images, classes, seed: int, image_ids=None, progress: str | None = None) -> MethodResult:
        from tqdm.auto import tqdm

        x = as_images(images)
        labels = as_classes(classes, len(x))
        ids = default_ids(image_ids, len(x))
        predict, s = predictor(model), self.settings
        maps, segs, weights, probs = [], [], [], []
        for i in tqdm(range(len(x)), desc=progress or self.name, disable=progress is None, unit="img"):
            seg = segment(x[i], s.slic)
            m = int(seg.max()) + 1
            rng = np.random.default_rng([int(seed), zlib.crc32(ids[i].encode())])
            z, w = coalitions(m, s.num_samples, rng)
            on = np.concatenate([np.ones((1, m), np.int8), np.zeros((1, m), np.int8), z])
            fill = fill_image(x[i], seg, s.fill, s.hide_color, s.blur_sigma)
            batches = perturbed_batches(x[i], seg, on, fill, self.batch_size)
            p = np.concatenate([np.asarray(predict(b)) for b in batches])
            c = int(labels[i])
            phi = shapley_from_values(z, w, p[2:, c].astype(np.float64), float(p[0, c]), float(p[1, c]))
            maps.append(phi.astype(np.float32)[seg])
            segs.append(seg)
            weights.append(phi)
            probs.append(p[0])
        if not maps:
            return MethodResult(self.name, np.zeros(x.shape, np.float32), np.zeros((0, 6), np.float32), labels)
        return MethodResult(self.name, np.stack(maps), np.stack(probs).astype(np.float32), labels,
                            segments=np.stack(segs).astype(np.int32), weights=pad_weights(weights))
