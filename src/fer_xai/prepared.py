"""The prepared-faces store: aligned crops, their landmarks and the manifest later stages read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .images import read_gray
from .layout import PREPARED_MANIFEST

MANIFEST_COLUMNS = [
    "id", "dataset", "subject", "label", "image", "mask", "source_path",
    "landmarks_source", "det_score", "size", "landmarks", "neutral",
]
# Added later: a manifest from before it reads as "no neutral twins".
OPTIONAL_COLUMNS = {"neutral": ""}
REJECTED_COLUMNS = ["dataset", "path", "stage", "reason", "detail"]


@dataclass(frozen=True)
class PreparedSet:
    root: Path
    manifest: pd.DataFrame

    def landmarks(self) -> np.ndarray:
        """(N, 68, 2) float32 landmarks in crop pixel coordinates, in manifest order."""
        return np.stack([np.asarray(v, dtype=np.float32).reshape(68, 2) for v in self.manifest["landmarks"]])

    def image_path(self, row: pd.Series) -> Path:
        return self.root / row["image"]

    def mask_path(self, row: pd.Series) -> Path | None:
        return self.root / row["mask"] if isinstance(row["mask"], str) and row["mask"] else None

    def neutrals(self, ids, size: int) -> np.ndarray:
        """Neutral twins of ``ids`` at ``size`` px ((N, size, size) uint8), pixel-aligned with
        :meth:`faces`; an error naming the faces without one (only the synthetic set has them)."""
        rows = self.rows(ids)
        missing = [i for i, p in zip(rows["id"], rows["neutral"]) if not (isinstance(p, str) and p)]
        if missing:
            raise KeyError(f"{self.root / PREPARED_MANIFEST}: no neutral twin for face(s) {missing[:5]}: only "
                           "datasets whose manifest has a `neutral` column (the synthetic set) carry them")
        if not len(rows):
            return np.zeros((0, size, size), np.uint8)
        return np.stack([resize_face(read_gray(self.root / p), size) for p in rows["neutral"]])

    def faces(self, ids, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Crops of ``ids`` at ``size`` px ((N, size, size) uint8) and their (N, 68, 2) landmarks."""
        rows = self.rows(ids)
        if not len(rows):
            return np.zeros((0, size, size), np.uint8), np.zeros((0, 68, 2), np.float32)
        imgs = np.stack([resize_face(read_gray(self.root / p), size) for p in rows["image"]])
        lms = np.stack([scale_landmarks(np.asarray(v, np.float32).reshape(68, 2), int(s), size)
                        for v, s in zip(rows["landmarks"], rows["size"])])
        return imgs, lms

    def rows(self, ids) -> pd.DataFrame:
        """Manifest rows of ``ids`` in that order; unknown ids are an error naming them."""
        ids = [str(i) for i in ids]
        by_id = self.manifest.set_index("id", drop=False)
        missing = [i for i in ids if i not in by_id.index]
        if missing:
            raise KeyError(f"{self.root / PREPARED_MANIFEST}: no prepared face with id(s) {missing[:5]}"
                           f"{' ...' if len(missing) > 5 else ''}: rerun `fer-xai prepare`/`train`?")
        return by_id.loc[ids].reset_index(drop=True)


def load_prepared(root: str | os.PathLike) -> PreparedSet:
    root = Path(root)
    path = root / PREPARED_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no prepared manifest; run `fer-xai prepare` first")
    df = pd.read_parquet(path)
    for column, default in OPTIONAL_COLUMNS.items():
        if column not in df.columns:
            df[column] = default
    missing = set(MANIFEST_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path}: manifest lacks columns {sorted(missing)}")
    return PreparedSet(root=root, manifest=df)


def scale_landmarks(landmarks: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """Landmarks after resizing a square crop with cv2.resize (pixel-centre convention)."""
    s = to_size / from_size
    return ((landmarks + 0.5) * s - 0.5).astype(np.float32)


def resize_face(gray: np.ndarray, size: int) -> np.ndarray:
    """A square crop resized to ``size`` (area filter when shrinking)."""
    if gray.shape == (size, size):
        return gray
    interp = cv2.INTER_AREA if size < gray.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interp)
