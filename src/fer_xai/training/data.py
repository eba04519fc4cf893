"""Fold data for one network: aligned crops resized to its input size, labels, landmark boxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import EXPRESSIONS
from ..layout import PREPARED_MANIFEST
from ..prepared import load_prepared

# Eyebrows, eyes, nose and mouth (0-based dlib indices 17-67): what every augmentation crop keeps.
CORE_LANDMARKS = slice(17, 68)


@dataclass(frozen=True)
class FoldData:
    ids: np.ndarray  # (N,) str
    images: np.ndarray  # (N, S, S) uint8 at the network's input size
    labels: np.ndarray  # (N,) int class indices into EXPRESSIONS
    landmarks: np.ndarray  # (N, 68, 2) float32 in input-size pixel coordinates
    subjects: np.ndarray  # (N,) str "dataset/subject"

    def __len__(self) -> int:
        return len(self.ids)

    def core_boxes(self) -> np.ndarray:
        """(N, 4) [y0, x0, y1, x1] normalized boxes around brows, eyes, nose and mouth."""
        size = self.images.shape[1]
        pts = self.landmarks[:, CORE_LANDMARKS]
        lo = np.clip(pts.min(axis=1) / (size - 1), 0.0, 1.0)
        hi = np.clip(pts.max(axis=1) / (size - 1), 0.0, 1.0)
        return np.stack([lo[:, 1], lo[:, 0], hi[:, 1], hi[:, 0]], axis=1).astype(np.float32)


def load_split(prepared_dir: Path, folds_csv: Path, test_fold: int, input_size: int) -> tuple[FoldData, FoldData]:
    """Training data (all folds but ``test_fold``) and test data (that fold), in a fixed order."""
    ps = load_prepared(prepared_dir)
    folds = pd.read_csv(folds_csv, dtype={"subject": str})
    if test_fold not in set(folds["fold"]):
        raise ValueError(f"{folds_csv}: fold {test_fold} does not exist (folds: {sorted(set(folds['fold']))})")
    m = ps.manifest.merge(folds[["id", "fold"]], on="id", how="inner", validate="one_to_one")
    if len(m) != len(ps.manifest):
        raise ValueError(f"{folds_csv} does not cover {prepared_dir / PREPARED_MANIFEST}: rerun `fer-xai split`")
    m = m[m["label"].isin(EXPRESSIONS)].sort_values("id", kind="stable").reset_index(drop=True)

    def build(mask: np.ndarray) -> FoldData:
        sub = m[mask]
        imgs, lms = ps.faces(sub["id"], input_size)
        return FoldData(
            ids=sub["id"].to_numpy(str),
            images=imgs,
            labels=np.array([EXPRESSIONS.index(x) for x in sub["label"]], dtype=np.int64),
            landmarks=lms,
            subjects=(sub["dataset"] + "/" + sub["subject"].astype(str)).to_numpy(str),
        )

    is_test = (m["fold"] == test_fold).to_numpy()
    return build(~is_test), build(is_test)
