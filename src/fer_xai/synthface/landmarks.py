"""The 68-point iBUG/dlib landmark convention (0-based) and small geometry helpers.

Everything in :mod:`fer_xai.synthface` indexes landmarks with these constants so the
action-unit tables read like FACS descriptions instead of lists of magic numbers.
"""

from __future__ import annotations

import numpy as np

# The project's one definition of eye centres / IOD (also used by alignment in `prepare`).
from ..faces.align import eye_centres, inter_ocular

__all__ = ["eye_centres", "inter_ocular"]  # re-exported for the synthface modules

N_LANDMARKS = 68

JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))  # subject's right = image left; 17 outer .. 21 inner
LEFT_BROW = tuple(range(22, 27))  # 22 inner .. 26 outer
NOSE_BRIDGE = tuple(range(27, 31))
NOSTRILS = tuple(range(31, 36))
RIGHT_EYE = tuple(range(36, 42))  # 36 outer corner, 37-38 upper lid, 39 inner, 40-41 lower lid
LEFT_EYE = tuple(range(42, 48))  # 42 inner corner, 43-44 upper lid, 45 outer, 46-47 lower lid
OUTER_LIPS = tuple(range(48, 60))  # 48 right corner, 51 top centre, 54 left corner, 57 bottom
INNER_LIPS = tuple(range(60, 68))  # 60 right corner, 62 top centre, 64 left corner, 66 bottom

# Horizontal mirror: index i of a face becomes MIRROR[i] of the flipped face.
MIRROR: np.ndarray = np.array(
    [16 - i for i in range(17)]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)


def landmark_error_iod(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean point-to-point error of ``pred`` against ``ref``, as a fraction of ``ref``'s IOD."""
    return float(np.linalg.norm(pred - ref, axis=1).mean() / inter_ocular(ref))


def similarity(scale: float, angle_rad: float, tx: float, ty: float) -> np.ndarray:
    """2x3 matrix of x -> scale * R(angle) x + t."""
    c, s = np.cos(angle_rad) * scale, np.sin(angle_rad) * scale
    return np.array([[c, -s, tx], [s, c, ty]], dtype=np.float64)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def eye_frame(pts: np.ndarray) -> np.ndarray:
    """2x3 similarity taking image coordinates to IOD units: eye midpoint at 0, eye line along +x."""
    right, left = eye_centres(pts)
    d = left - right
    iod = float(np.hypot(*d))
    ang = np.arctan2(d[1], d[0])
    m = similarity(1.0 / iod, -ang, 0.0, 0.0)
    mid = (right + left) / 2
    m[:, 2] = -m[:, :2] @ mid
    return m
