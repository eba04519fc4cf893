"""Chance levels of the paper's metric (IoU/F1 of Otsu(heatmap) against the Ekman masks).

- random superpixel weights: every explained image's own segmentation, each superpixel given a
  uniform random weight, then the same canonical warp and averaging as the real maps;
- the face-shape prior: the mean heatmap over all expressions scored against each mask;
- specificity: does expression E's heatmap match E's mask better than the other five masks?
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..heatmaps.aggregate import stretch, to_png
from ..scoring import UndefinedMetricWarning, binarize_heatmap, score_heatmap


def random_superpixel_maps(segments: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, H, W) float32 maps: each superpixel of each image painted with a U(0, 1) weight."""
    segments = np.asarray(segments)
    out = np.empty(segments.shape, np.float32)
    for i, seg in enumerate(segments):
        w = rng.random(int(seg.max()) + 1).astype(np.float32)
        out[i] = w[seg]
    return out


def independent_iou(region_share: float, mask_share: float) -> float:
    """Expected IoU of a region placed independently of a mask (shares of the image area):
    intersection a*m, union a + m - a*m."""
    a, m = float(region_share), float(mask_share)
    union = a + m - a * m
    return a * m / union if union > 0 else float("nan")


def _score(heat: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return score_heatmap(heat, np.where(mask, 255, 0).astype(np.uint8), 127)


def mean_heatmap(totals: Mapping[str, np.ndarray]) -> np.ndarray:
    """The face-shape prior: the stretched mean of the expressions' total heatmaps (uint8)."""
    return to_png(stretch(np.mean([np.asarray(t, np.float64) for t in totals.values()], axis=0)))


def prior_scores(totals: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """``expression, iou, f1``: the mean heatmap over all expressions against each mask."""
    prior = mean_heatmap(totals)
    rows = [{"expression": e, **{k: _score(prior, m)[k] for k in ("iou", "f1")}} for e, m in masks.items()]
    return pd.DataFrame(rows, columns=["expression", "iou", "f1"])


def specificity(totals: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per expression E: IoU of E's heatmap with E's mask (``own_iou``), the best IoU with another
    mask (``best_other_iou``, which one), E's mask's rank among all masks (1 = best) and
    ``specific`` (own strictly above every other)."""
    rows = []
    for e, heat in totals.items():
        if e not in masks:
            continue
        pred = binarize_heatmap(np.asarray(heat))
        ious = {}
        for name, m in masks.items():
            m = np.asarray(m, bool)
            union = np.count_nonzero(pred | m)
            ious[name] = np.count_nonzero(pred & m) / union if union else float("nan")
        others = {k: v for k, v in ious.items() if k != e}
        best = max(others, key=lambda k: -1.0 if np.isnan(others[k]) else others[k]) if others else ""
        own = ious[e]
        rank = 1 + sum(v > own for v in others.values() if np.isfinite(v))
        rows.append({"expression": e, "own_iou": own, "best_other": best,
                     "best_other_iou": others.get(best, float("nan")), "rank": rank,
                     "specific": bool(np.isfinite(own) and all(own > v for v in others.values() if np.isfinite(v)))})
    return pd.DataFrame(rows, columns=["expression", "own_iou", "best_other", "best_other_iou", "rank", "specific"])


def random_weight_scores(mean_maps: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """``expression, iou, f1`` of random-weight heatmaps (float means per expression) against the masks."""
    rows = []
    for e, mean in mean_maps.items():
        if e in masks:
            s = _score(to_png(stretch(mean)), np.asarray(masks[e], bool))
            rows.append({"expression": e, "iou": s["iou"], "f1": s["f1"]})
    return pd.DataFrame(rows, columns=["expression", "iou", "f1"])
