"""Standardized explanations: each LIME map normalized by its max and warped into canonical space.

A face's warp grid is built once and reused for every map of that face: the same image is
explained by several networks and folds, at different input sizes; the grid of one resolution
is rescaled exactly to another (:meth:`fer_xai.faces.canonical.WarpGrid.rescaled`), so one
grid per image id serves them all, and the face's full-size mask and photo too.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..faces.canonical import CanonicalSpace, WarpGrid, WarpRejected

log = logging.getLogger(__name__)

# Landmarks of one image id at two resolutions are "the same face" when they agree to this
# fraction of the image size after pixel-centre scaling (0.02 px at 224 px).
LANDMARK_TOLERANCE = 1e-4


def _normalized(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    return (np.asarray(landmarks, np.float64) + 0.5) / np.array([w, h], np.float64)


class GridCache:
    """Warp grids by image id, least recently used evicted beyond ``max_items``.

    A cached grid is reused when the landmarks it was built from, scaled to the requested
    resolution, agree with the requested ones; otherwise the grid is rebuilt. Rejections
    (:class:`WarpRejected`) are cached too, so a bad face is checked once.
    """

    def __init__(self, space: CanonicalSpace, max_items: int = 1024):
        self.space = space
        self.max_items = max(1, int(max_items))
        self._items: OrderedDict[str, tuple[np.ndarray, WarpGrid | WarpRejected]] = OrderedDict()
        self.built = 0
        self.reused = 0

    def get(self, image_id: str, landmarks: np.ndarray, shape: tuple[int, int]) -> WarpGrid:
        norm = _normalized(landmarks, shape)
        hit = self._items.get(image_id)
        if hit is not None and hit[0].shape == norm.shape and np.allclose(hit[0], norm, atol=LANDMARK_TOLERANCE,
                                                                            rtol=0):
            self._items.move_to_end(image_id)
            self.reused += 1
            if isinstance(hit[1], WarpRejected):
                raise hit[1]
            return hit[1].rescaled(tuple(shape))
        if hit is not None:
            log.debug("%s: landmarks differ from the cached grid's; rebuilding", image_id)
        self.built += 1
        try:
            grid: WarpGrid | WarpRejected = self.space.grid(landmarks, tuple(shape))
        except WarpRejected as exc:
            grid = exc
        self._items[image_id] = (norm, grid)
        self._items.move_to_end(image_id)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        if isinstance(grid, WarpRejected):
            raise grid
        return grid


def normalize_map(m: np.ndarray) -> tuple[np.ndarray, bool]:
    """``m / max(m)`` as float32 in [0, 1]; an all-zero (or non-positive) map stays zero (``True``)."""
    m = np.nan_to_num(np.asarray(m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    np.maximum(m, 0.0, out=m)
    top = float(m.max(initial=0.0))
    if top <= 0.0:
        return np.zeros_like(m), True
    return m / np.float32(top), False


def to_uint8(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> 0..255 (round half to even, clipped)."""
    return np.clip(np.rint(np.asarray(values, np.float64) * 255.0), 0, 255).astype(np.uint8)


@dataclass
class Standardized:
    """The canonical maps of one explanations file."""

    ids: np.ndarray  # (n,) str
    classes: np.ndarray  # (n,) str, explained (predicted) class
    labels: np.ndarray  # (n,) str, true class
    maps: np.ndarray  # (n, H, W) uint8 = warped (map / max) * 255
    rejected: list[dict] = field(default_factory=list)  # id, reason, detail
    n_empty: int = 0  # maps with no positive weight (all zero)
    n_folded: int = 0  # accepted faces whose warp folds or collapses within the tolerance


def standardize(exp, cache: GridCache, interpolation: str = "linear", progress=None) -> Standardized:
    """Warp every map of an :class:`fer_xai.explain.store.ExplanationSet` into canonical space."""
    space = cache.space
    n = len(exp.ids)
    keep, out = [], np.zeros((n, *space.shape), np.uint8)
    rejected, n_empty, n_folded = [], 0, 0
    for i in range(n):
        iid = str(exp.ids[i])
        m = exp.maps[i]
        try:
            grid = cache.get(iid, exp.landmarks[i], m.shape[:2])
        except WarpRejected as exc:
            rejected.append({"id": iid, "reason": exc.reason, "detail": exc.detail})
        else:
            norm, empty = normalize_map(m)
            n_empty += empty
            n_folded += grid.n_folded > 0
            out[len(keep)] = to_uint8(grid.apply(norm, interpolation))
            keep.append(i)
        if progress is not None:
            progress.update(1)
    idx = np.asarray(keep, dtype=np.int64)
    return Standardized(
        ids=np.asarray(exp.ids).astype(str)[idx], classes=np.asarray(exp.classes).astype(str)[idx],
        labels=np.asarray(exp.labels).astype(str)[idx], maps=out[: len(keep)],
        rejected=rejected, n_empty=int(n_empty), n_folded=int(n_folded),
    )
