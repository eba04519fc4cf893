"""Heatmap-vs-mask overlap scores (paper section 4.5, Eqs. 3-6): binarize, count, score.

With the mask as ground truth G and the Otsu-thresholded heatmap as prediction P:

* IoU = TP / (TP + FP + FN)        * F1 = 2 TP / (2 TP + FP + FN)
* precision = TP / (TP + FP)       * recall = TP / (TP + FN)

Empty denominators (an empty prediction for precision, an empty mask for recall, both empty
for IoU/F1) give NaN and a :class:`UndefinedMetricWarning`; NaN then propagates into every
mean that includes it (a cell is never silently averaged over fewer folds).

A leaf module (numpy and scikit-image only) so that both :mod:`fer_xai.heatmaps` (planted truth)
and :mod:`fer_xai.compare` (Ekman masks) score the same way without importing each other.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage.filters import threshold_otsu

METRICS: tuple[str, ...] = ("iou", "f1", "precision", "recall")


class UndefinedMetricWarning(UserWarning):
    """A metric whose denominator is zero (reported as NaN)."""


def otsu_threshold(heatmap: np.ndarray) -> float:
    """Otsu's threshold of a uint8 heatmap over 256 bins (``skimage.filters.threshold_otsu``)."""
    img = np.asarray(heatmap)
    if img.size == 0:
        raise ValueError("empty heatmap")
    if img.min() == img.max():
        return float(img.flat[0])  # constant image: nothing is above the threshold
    return float(threshold_otsu(img, nbins=256))


def binarize_heatmap(heatmap: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Foreground = pixels strictly above Otsu's threshold (``heatmap > t``, as the paper did)."""
    t = otsu_threshold(heatmap) if threshold is None else threshold
    return np.asarray(heatmap) > t


def binarize_mask(mask: np.ndarray, threshold: int = 127) -> np.ndarray:
    """Ekman mask -> bool, foreground = ``mask > threshold``."""
    return np.asarray(mask) > threshold


def confusion_counts(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """TP, FP, FN, TN of a binary prediction against a binary ground truth of the same shape."""
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"shape mismatch: prediction {pred.shape} vs ground truth {truth.shape}")
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = int(pred.size - tp - fp - fn)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def _ratio(num: float, den: float, name: str, context: str) -> float:
    if den == 0:
        warnings.warn(
            f"{name} undefined (zero denominator){' for ' + context if context else ''}; "
            "reported as NaN",
            UndefinedMetricWarning,
            stacklevel=3,
        )
        return float("nan")
    return float(num) / float(den)


def scores_from_counts(tp: int, fp: int, fn: int, context: str = "") -> dict[str, float]:
    """IoU, F1, precision and recall from confusion counts (NaN for an empty denominator)."""
    return {
        "iou": _ratio(tp, tp + fp + fn, "IoU", context),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, "F1", context),
        "precision": _ratio(tp, tp + fp, "precision", context),
        "recall": _ratio(tp, tp + fn, "recall", context),
    }


def score_heatmap(
    heatmap: np.ndarray, mask: np.ndarray, mask_threshold: int = 127, context: str = ""
) -> dict[str, float]:
    """Otsu-binarize ``heatmap``, binarize ``mask`` and score the overlap (Eqs. 3-6)."""
    pred = binarize_heatmap(heatmap)
    truth = binarize_mask(mask, mask_threshold)
    c = confusion_counts(pred, truth)
    return scores_from_counts(c["tp"], c["fp"], c["fn"], context=context)
