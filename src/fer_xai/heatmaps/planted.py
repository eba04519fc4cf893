"""Planted truth on the synthetic set: do the heatmaps find the regions the generator changed?

Each explained image's AU-region mask (the prepared manifest's ``mask`` column: where the
expression changed the subject's neutral face) is warped into canonical space with the same
grid as its explanations (nearest sampling: a label map). Per expression (the image's true
label), the warped masks are averaged and binarized at ``threshold`` (the share of images that
changed there); the total heatmap, Otsu-thresholded, is scored against it with
:func:`fer_xai.scoring.score_heatmap` (precision, recall, IoU, F1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..labels import EXPRESSIONS
from ..scoring import score_heatmap

COLUMNS = ["expression", "precision", "recall", "iou", "f1", "n_images", "mask_fraction"]


class MaskMeans:
    """Running per-expression sums of warped AU-region masks (fractions in [0, 1])."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.sums = {e: np.zeros(shape, np.float64) for e in EXPRESSIONS}
        self.counts = {e: 0 for e in EXPRESSIONS}

    def add(self, expression: str, warped_mask: np.ndarray) -> None:
        """Add one image's warped mask (bool: where its expression changed the face)."""
        if expression not in self.sums:
            return
        self.sums[expression] += np.asarray(warped_mask, dtype=bool)
        self.counts[expression] += 1

    def mean(self, expression: str) -> np.ndarray | None:
        n = self.counts[expression]
        return self.sums[expression] / n if n else None

    def binary(self, expression: str, threshold: float) -> np.ndarray | None:
        m = self.mean(expression)
        return None if m is None else m >= threshold


def planted_truth_table(total_png: dict[str, np.ndarray], masks: MaskMeans, threshold: float) -> pd.DataFrame:
    """One row per expression: Otsu(total heatmap) scored against the binarized mean mask."""
    rows = []
    for e in EXPRESSIONS:
        truth = masks.binary(e, threshold)
        heat = total_png.get(e)
        if truth is None or heat is None:
            rows.append({"expression": e, **{k: float("nan") for k in ("precision", "recall", "iou", "f1")},
                         "n_images": masks.counts[e], "mask_fraction": float("nan")})
            continue
        s = score_heatmap(heat, np.where(truth, 255, 0).astype(np.uint8), 127, context=f"planted truth {e}")
        rows.append({"expression": e, "precision": s["precision"], "recall": s["recall"], "iou": s["iou"],
                     "f1": s["f1"], "n_images": masks.counts[e], "mask_fraction": float(truth.mean())})
    return pd.DataFrame(rows, columns=COLUMNS)
