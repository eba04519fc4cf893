"""Planted truth per method: a total heatmap against the AU regions the generator changed.

The heatmaps stage already warps each image's AU-region mask into canonical space and writes,
per expression, the binarized mean (``planted/<Expression>_planted.png``) next to the total heatmap
(``total/<Expression>_heatmap.png``); scored the same way here (:func:`fer_xai.scoring.score_heatmap`
on Otsu(total)), with the relevance mass inside the region next to its area share (chance).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..compare.threshold_free import relevance_mass
from ..scoring import UndefinedMetricWarning, score_heatmap

COLUMNS = ("precision", "recall", "iou", "f1", "relevance_mass", "area_share", "relevance_lift")


def planted_scores(total: np.ndarray, truth: np.ndarray, context: str = "") -> dict[str, float]:
    """Precision, recall, IoU, F1 of Otsu(``total``) vs ``truth`` (bool), relevance mass inside
    ``truth``, its area share and their ratio (lift; 1 = chance)."""
    truth = np.asarray(truth, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (UndefinedMetricWarning, RuntimeWarning))
        s = score_heatmap(np.asarray(total), np.where(truth, 255, 0).astype(np.uint8), 127, context=context)
        mass, share = relevance_mass(np.asarray(total, np.float64), truth)
    lift = mass / share if share > 0 and np.isfinite(mass) else float("nan")
    return {"precision": s["precision"], "recall": s["recall"], "iou": s["iou"], "f1": s["f1"],
            "relevance_mass": mass, "area_share": share, "relevance_lift": lift}
