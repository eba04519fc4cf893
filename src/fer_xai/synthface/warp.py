"""Piecewise-affine warping on a fixed triangulation, built as one dense map for ``cv2.remap``.

The triangulation is computed once on the template control points; every face is a move of
the same vertices, so a pixel's triangle (and hence its affine map) changes smoothly with the
expression. Per triangle we only rasterise an index image (``cv2.fillConvexPoly`` with
sub-pixel ``shift``) and evaluate the affine maps vectorised: about a millisecond at 192 px.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

_SHIFT = 4  # fixed-point bits for sub-pixel triangle rasterisation


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (k, 3) of the template control points, oriented counter-clockwise."""
    tri = Delaunay(points).simplices.astype(np.int32)
    area = signed_areas(points, tri)
    tri[area < 0] = tri[area < 0][:, [0, 2, 1]]
    return tri


def signed_areas(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = points[tri[:, 0]], points[tri[:, 1]], points[tri[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def min_area_ratio(ref: np.ndarray, moved: np.ndarray, tri: np.ndarray) -> float:
    """Smallest area ratio moved/ref over the triangles; <= 0 means some triangle flipped."""
    return float((signed_areas(moved, tri) / signed_areas(ref, tri)).min())


def triangle_affines(dst: np.ndarray, src: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """(k, 2, 3) affine maps taking each triangle of ``dst`` onto the same triangle of ``src``."""
    d = np.concatenate([dst[tri], np.ones((len(tri), 3, 1))], axis=2)  # (k, 3, 3) rows [x y 1]
    s = src[tri]  # (k, 3, 2)
    # Solve d @ M^T = s for each triangle; M^T is (3, 2).
    mt = np.linalg.solve(d, s)
    return np.transpose(mt, (0, 2, 1))


def triangle_index(dst: np.ndarray, tri: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Image of 1 + the index of the triangle covering each pixel centre (0 = outside all)."""
    idx = np.zeros(shape, dtype=np.int32)
    fixed = np.round(dst * (1 << _SHIFT)).astype(np.int32)
    for k, t in enumerate(tri):
        cv2.fillConvexPoly(idx, fixed[t], k + 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return idx


def dense_map(
    dst: np.ndarray, src: np.ndarray, tri: np.ndarray, shape: tuple[int, int], index: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(map_x, map_y) float32 such that output pixel p shows source point map(p).

    ``dst`` are the control points in output pixels, ``src`` the same points in the source
    image. Pixels outside the triangulation map to (-1e4, -1e4) so remap fills them with the
    border value. ``index`` (from :func:`triangle_index`) may be passed when it is reused.
    """
    if index is None:
        index = triangle_index(dst, tri, shape)
    aff = triangle_affines(dst, src, tri)
    aff = np.concatenate([np.zeros((1, 2, 3)), aff], axis=0)
    aff[0, :, 2] = -1e4
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    m = aff[index]  # (h, w, 2, 3)
    mx = m[..., 0, 0] * xs + m[..., 0, 1] * ys + m[..., 0, 2]
    my = m[..., 1, 0] * xs + m[..., 1, 1] * ys + m[..., 1, 2]
    return mx.astype(np.float32), my.astype(np.float32)


def warp(
    image: np.ndarray,
    map_x: np.ndarray,
    map_y: np.ndarray,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
