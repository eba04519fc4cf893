"""Heatmap-vs-mask overlap metrics (paper section 4.5, Eqs. 3-6) and their aggregation.

With the Ekman mask as ground truth G and the Otsu-thresholded heatmap as prediction P:

* IoU = TP / (TP + FP + FN)        * F1 = 2 TP / (2 TP + FP + FN)
* precision = TP / (TP + FP)       * recall = TP / (TP + FN)

Empty denominators (an empty prediction for precision, an empty mask for recall, both empty
for IoU/F1) give NaN and a :class:`UndefinedMetricWarning`; NaN then propagates into every
mean that includes it (a cell is never silently averaged over fewer folds).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from skimage.filters import threshold_otsu

METRICS: tuple[str, ...] = ("iou", "f1", "precision", "recall")
METRIC_LABELS: dict[str, str] = {"iou": "IoU", "f1": "F1", "precision": "Precision", "recall": "Recall"}
AVG = "Avg"


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


def fold_metrics(
    by_cv: Mapping[tuple[str, int, str], np.ndarray],
    masks: Mapping[str, np.ndarray],
    mask_threshold: int = 127,
    networks: list[str] | None = None,
    expressions: list[str] | None = None,
) -> pd.DataFrame:
    """One row per network x fold x expression: ``model,fold,expression,iou,f1,precision,recall``."""
    nets = networks or sorted({k[0] for k in by_cv})
    exprs = expressions or sorted({k[2] for k in by_cv})
    truth = {e: binarize_mask(m, mask_threshold) for e, m in masks.items()}
    rows = []
    for net in nets:
        folds = sorted({f for n, f, _ in by_cv if n == net})
        for fold in folds:
            for expr in exprs:
                hm = by_cv.get((net, fold, expr))
                if hm is None:
                    scores = {m: float("nan") for m in METRICS}
                else:
                    c = confusion_counts(binarize_heatmap(hm), truth[expr])
                    scores = scores_from_counts(
                        c["tp"], c["fp"], c["fn"], context=f"{net} CV{fold} {expr}"
                    )
                rows.append({"model": net, "fold": fold, "expression": expr, **scores})
    return pd.DataFrame(rows, columns=["model", "fold", "expression", *METRICS])


def aggregate(per_fold: pd.DataFrame, networks=None, expressions=None) -> pd.DataFrame:
    """Fold means per (model, expression) plus the paper's two kinds of averages.

    * ``expression == "Avg"``: a model's mean over its expressions ("Avg. (model)"),
    * ``model == "Avg"``: an expression's mean over the networks ("Avg. (express.)"),
    * ``model == expression == "Avg"``: the grand mean (mean of the model averages).

    Columns: ``model,expression,iou,f1,precision,recall``. NaN propagates (``skipna=False``).
    """
    nets = list(networks) if networks is not None else list(dict.fromkeys(per_fold["model"]))
    exprs = (
        list(expressions) if expressions is not None else list(dict.fromkeys(per_fold["expression"]))
    )
    cells = (
        per_fold.groupby(["model", "expression"], sort=False)[list(METRICS)]
        .agg(lambda s: s.mean(skipna=False))
    )
    wide = {m: cells[m].unstack("expression").reindex(index=nets, columns=exprs) for m in METRICS}
    rows = []
    for net in nets:
        for expr in exprs:
            rows.append({"model": net, "expression": expr, **{m: wide[m].at[net, expr] for m in METRICS}})
        rows.append({"model": net, "expression": AVG,
                     **{m: wide[m].loc[net].mean(skipna=False) for m in METRICS}})
    for expr in exprs:
        rows.append({"model": AVG, "expression": expr,
                     **{m: wide[m][expr].mean(skipna=False) for m in METRICS}})
    rows.append({"model": AVG, "expression": AVG,
                 **{m: wide[m].mean(axis=1, skipna=False).mean(skipna=False) for m in METRICS}})
    out = pd.DataFrame(rows, columns=["model", "expression", *METRICS])
    return out
