"""Ekman-mask overlap per network, fold and expression, and its aggregation (paper Tables 3-4).

The scores themselves (Otsu, confusion counts, IoU/F1/precision/recall, NaN for an empty
denominator) are :mod:`fer_xai.scoring`'s; its names are re-exported here for callers of
``compare.metrics``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..scoring import (
    METRICS,
    UndefinedMetricWarning,
    binarize_heatmap,
    binarize_mask,
    confusion_counts,
    otsu_threshold,
    score_heatmap,
    scores_from_counts,
)

__all__ = [
    "AVG", "METRICS", "METRIC_LABELS", "UndefinedMetricWarning", "aggregate", "binarize_heatmap",
    "binarize_mask", "confusion_counts", "fold_metrics", "otsu_threshold", "score_heatmap",
    "scores_from_counts",
]

METRIC_LABELS: dict[str, str] = {"iou": "IoU", "f1": "F1", "precision": "Precision", "recall": "Recall"}
AVG = "Avg"


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
