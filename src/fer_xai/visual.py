"""Small figure helpers shared by stages: contact sheets of faces with landmarks and masks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .images import read_gray


def contact_sheet(
    images: Sequence[Path],
    landmarks: Sequence[np.ndarray] | None = None,
    captions: Sequence[str] | None = None,
    masks: Sequence[Path | None] | None = None,
    n: int = 36,
    tile: int = 128,
    cols: int = 6,
) -> np.ndarray:
    """An RGB mosaic of up to ``n`` evenly spaced faces: landmarks as dots, mask outline in red."""
    total = len(images)
    if total == 0:
        return np.zeros((tile, tile, 3), np.uint8)
    idx = np.unique(np.linspace(0, total - 1, num=min(n, total)).round().astype(int))
    rows = int(np.ceil(len(idx) / cols))
    sheet = np.full((rows * tile, min(cols, len(idx)) * tile, 3), 255, np.uint8)
    for k, i in enumerate(idx):
        gray = read_gray(images[i])
        scale = tile / max(gray.shape)
        small = cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
        if masks is not None and masks[i] is not None:
            m = cv2.resize(read_gray(masks[i]), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours((m > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(rgb, contours, -1, (230, 40, 40), 1)
        if landmarks is not None:
            for x, y in np.asarray(landmarks[i]) * scale:
                cv2.circle(rgb, (int(round(x)), int(round(y))), 1, (40, 200, 40), -1)
        if captions is not None:
            cv2.putText(rgb, str(captions[i])[:22], (2, tile - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33,
                        (255, 255, 0), 1, cv2.LINE_AA)
        r, c = divmod(k, cols)
        sheet[r * tile:r * tile + rgb.shape[0], c * tile:c * tile + rgb.shape[1]] = rgb
    return sheet
