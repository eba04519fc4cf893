"""Rasterize the Ekman-mask spec on the canonical template (paper section 4.4).

Vertices are resolved to canonical pixel coordinates (pixel centres) on the template's 89
control points; polygons and triangles are filled with ``cv2.fillPoly`` at 1/16 px precision,
circles (a point and its vicinity) are the pixel centres within the radius. An expression's
mask is the union of its AUs' regions (the expression's overrides, else each AU's default) and
of the combination regions whose AUs it all has; AUs listed under ``omit`` are not drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel

from ..faces.canonical import CanonicalSpace
from .schema import XY, Lerp, LineAtX, LineAtY, Offset, Region
from .spec import MaskSpec, SpecError, parse_vertex

_SHIFT = 4


def resolve_vertex(v, space: CanonicalSpace, spec: MaskSpec, _depth: int = 0) -> np.ndarray:
    """Canonical (x, y) of a spec vertex (see :mod:`fer_xai.masks.spec` for the forms).

    ``v`` is a loaded spec's vertex or one as written in a spec (``{"lerp": [37, 46], "t": 0.5}``).
    """
    if _depth > 20:  # load_spec rejects cycles; a MaskSpec built by hand may still have one
        raise SpecError(f"{spec.path}: named points refer to each other in a cycle")
    if isinstance(v, bool) or not isinstance(v, (int, str, BaseModel)):
        v = parse_vertex(v)
    if isinstance(v, int):
        return space.point(v).astype(np.float64)
    if isinstance(v, str):
        return resolve_vertex(spec.points[v], space, spec, _depth + 1)
    r = lambda u: resolve_vertex(u, space, spec, _depth + 1)  # noqa: E731
    if isinstance(v, XY):
        return np.array([r(v.x_of)[0], r(v.y_of)[1]])
    if isinstance(v, LineAtX):
        a, b = r(v.line[0]), r(v.line[1])
        x = r(v.x_of)[0]
        if abs(b[0] - a[0]) < 1e-9:
            raise SpecError(f"{spec.path}: vertex {v}: line {list(v.line)} is vertical, no point at a given x")
        return np.array([x, a[1] + (x - a[0]) * (b[1] - a[1]) / (b[0] - a[0])])
    if isinstance(v, LineAtY):
        a, b = r(v.line[0]), r(v.line[1])
        y = r(v.y_of)[1]
        if abs(b[1] - a[1]) < 1e-9:
            raise SpecError(f"{spec.path}: vertex {v}: line {list(v.line)} is horizontal, no point at a given y")
        return np.array([a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1]), y])
    if isinstance(v, Lerp):
        a, b = r(v.lerp[0]), r(v.lerp[1])
        return a + float(v.t) * (b - a)
    if isinstance(v, Offset):
        return r(v.at) + np.array([float(v.dx), float(v.dy)])
    raise SpecError(f"{spec.path}: cannot resolve vertex {v!r}")


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * (1 << _SHIFT)).astype(np.int32)


def draw_region(region: Region, space: CanonicalSpace, spec: MaskSpec, canvas: np.ndarray | None = None) -> np.ndarray:
    """Fill one region into a boolean canvas of the canonical shape (a new one by default)."""
    img = np.zeros(space.shape, np.uint8) if canvas is None else canvas.astype(np.uint8)
    if region.polygon is not None:
        pts = np.array([resolve_vertex(v, space, spec) for v in region.polygon])
        cv2.fillPoly(img, [_fixed(pts)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    elif region.triangles is not None:
        tris = [_fixed(np.array([resolve_vertex(v, space, spec) for v in t])) for t in region.triangles]
        cv2.fillPoly(img, tris, 1, lineType=cv2.LINE_8, shift=_SHIFT)
    else:
        c = resolve_vertex(region.circle.center, space, spec)
        r = float(region.circle.radius)
        ys, xs = np.ogrid[0 : space.height, 0 : space.width]
        img[(xs - c[0]) ** 2 + (ys - c[1]) ** 2 <= r * r] = 1  # pixel centres within the radius
    return img.astype(bool)


def draw_regions(names, space: CanonicalSpace, spec: MaskSpec) -> np.ndarray:
    out = np.zeros(space.shape, bool)
    for n in names:
        out |= draw_region(spec.regions[n], space, spec)
    return out


@dataclass
class ExpressionMasks:
    mask: np.ndarray  # (H, W) bool: the expression's Ekman mask
    per_au: dict[int, np.ndarray]  # AU -> its region as drawn in this expression
    combinations: dict[str, np.ndarray]  # "AU1+AU4" -> merge region


def expression_masks(expression: str, space: CanonicalSpace, spec: MaskSpec) -> ExpressionMasks:
    ex = spec.expressions[expression]
    per_au = {a: draw_regions(spec.au_regions(expression, a), space, spec) for a in ex.aus if a not in ex.omit}
    combos = {"+".join(f"AU{a}" for a in c.aus): draw_regions(names, space, spec)
              for c, names in spec.combination_regions(expression)}
    mask = np.zeros(space.shape, bool)
    for m in (*per_au.values(), *combos.values()):
        mask |= m
    return ExpressionMasks(mask, per_au, combos)


def au_masks(space: CanonicalSpace, spec: MaskSpec) -> dict[int, np.ndarray]:
    """Each AU's default region: which face area the AU moves, whatever the expression."""
    return {n: draw_regions(au.regions, space, spec) for n, au in sorted(spec.aus.items())}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else float("nan")


def to_published(mask: np.ndarray) -> np.ndarray:
    """The published mask format: (H, W, 3) uint8, three identical channels, 0/255."""
    m = np.where(np.asarray(mask, bool), 255, 0).astype(np.uint8)
    return np.repeat(m[:, :, None], 3, axis=2)
