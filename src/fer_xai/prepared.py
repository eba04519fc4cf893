"""The prepared-faces store: aligned crops, their landmarks and the manifest later stages read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MANIFEST = "manifest.parquet"
REJECTED = "rejected.csv"
SUMMARY = "summary.json"
CONTACT_SHEET = "contact_sheet.png"

MANIFEST_COLUMNS = [
    "id", "dataset", "subject", "label", "image", "mask", "source_path",
    "landmarks_source", "det_score", "size", "landmarks",
]
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


def load_prepared(root: str | os.PathLike) -> PreparedSet:
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no prepared manifest; run `fer-xai prepare` first")
    df = pd.read_parquet(path)
    missing = set(MANIFEST_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path}: manifest lacks columns {sorted(missing)}")
    return PreparedSet(root=root, manifest=df)


def scale_landmarks(landmarks: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """Landmarks after resizing a square crop with cv2.resize (pixel-centre convention)."""
    s = to_size / from_size
    return ((landmarks + 0.5) * s - 0.5).astype(np.float32)
