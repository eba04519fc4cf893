"""A sample sheet: explanations drawn over the faces they explain, a row per class."""

from __future__ import annotations

import cv2
import numpy as np

from ..labels import DISPLAY_NAMES


def overlay(face: np.ndarray, emap: np.ndarray, tile: int = 128, alpha: float = 0.5) -> np.ndarray:
    """RGB tile: the gray face with the explanation (scaled by its own max) in the jet colormap."""
    # Area averaging shrinks without aliasing; enlarging with it would give blocky faces.
    shrink = tile < face.shape[0]
    face = cv2.resize(face.astype(np.uint8), (tile, tile), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    peak = float(emap.max())
    heat = (emap / peak * 255).astype(np.uint8) if peak > 0 else np.zeros_like(emap, np.uint8)
    heat = cv2.resize(heat, (tile, tile), interpolation=cv2.INTER_NEAREST)
    colour = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    rgb = cv2.cvtColor(face, cv2.COLOR_GRAY2RGB)
    a = (alpha * (heat > 0))[..., None]
    return (rgb * (1 - a) + colour * a).astype(np.uint8)


def sample_sheet(faces: np.ndarray, maps: np.ndarray, classes, correct, per_class: int = 4,
                 tile: int = 128) -> np.ndarray:
    """Up to ``per_class`` explanations for each class in order of appearance, one row per class."""
    classes = [str(c) for c in classes]
    order = list(dict.fromkeys(classes))
    if not order:
        return np.full((tile, tile, 3), 255, np.uint8)
    sheet = np.full((len(order) * tile, per_class * tile, 3), 255, np.uint8)
    for r, cls in enumerate(order):
        idx = [i for i, c in enumerate(classes) if c == cls][:per_class]
        for c, i in enumerate(idx):
            t = overlay(faces[i], maps[i], tile)
            mark = "" if correct is None else (" ok" if correct[i] else " x")
            cv2.putText(t, f"{DISPLAY_NAMES.get(cls, cls)}{mark}", (3, tile - 5), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4, (255, 255, 255), 1, cv2.LINE_AA)
            sheet[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = t
    return sheet
