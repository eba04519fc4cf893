"""FACS action units as landmark moves plus the skin changes they cause.

Each AU moves landmarks and the auxiliary skin points of :mod:`.template` (face units, at
intensity 1; y points down, ``out`` is away from the facial midline) and draws its own
appearance cue: forehead wrinkles for AU1/AU2, glabellar furrows for AU4, crow's feet and
raised cheeks for AU6, nose wrinkles for AU9, nasolabial folds for AU12, and so on. An
expression is the sum of its AUs from :data:`fer_xai.labels.EXPRESSION_AUS` (paper Table 2).

Magnitudes follow the FACS manual's descriptions in spirit and were tuned so that every
expression is visible at intensity 0.6 on a 64 px face without folding the triangulation.
"""

from __future__ import annotations

import cv2
import numpy as np

from .landmarks import MIRROR
from .template import AUX_INDEX, N_MOVABLE, control_index

# AU -> list of (points on the image-left side or midline, (out, down) move in face units).
# Paired points are mirrored automatically; midline points must have out == 0.
AU_MOVES: dict[int, list[tuple[tuple, tuple[float, float]]]] = {
    1: [  # inner brow raiser
        ((21, 20), (0.0, -0.14)), ((19,), (0.0, -0.08)), ((18,), (0.0, -0.035)),
        (("glabella",), (0.0, -0.05)),
    ],
    2: [  # outer brow raiser
        ((17,), (0.01, -0.13)), ((18,), (0.0, -0.13)), ((19,), (0.0, -0.08)), ((20,), (0.0, -0.03)),
        ((37, 38), (0.0, -0.01)),
    ],
    4: [  # brow lowerer: brows down and together
        ((21,), (-0.05, 0.09)), ((20,), (-0.035, 0.075)), ((19,), (-0.015, 0.045)), ((18,), (0.0, 0.02)),
        (("glabella",), (0.0, 0.045)), ((37, 38), (0.0, 0.02)),
    ],
    5: [  # upper lid raiser
        ((37, 38), (0.0, -0.075)),
    ],
    6: [  # cheek raiser: cheeks and lower lids up
        ((40, 41), (0.0, -0.035)), ((36,), (0.0, -0.015)), (("infraorbital",), (0.0, -0.05)),
        (("upper_cheek",), (0.0, -0.07)), (("nasolabial",), (0.0, -0.03)), (("lower_cheek",), (0.0, -0.02)),
    ],
    7: [  # lid tightener
        ((40, 41), (0.0, -0.05)), ((37, 38), (0.0, 0.015)), (("infraorbital",), (0.0, -0.025)),
    ],
    9: [  # nose wrinkler: wings and upper lip up, medial brows down
        ((31,), (0.025, -0.07)), ((32,), (0.0, -0.06)), ((33,), (0.0, -0.04)), ((30,), (0.0, -0.025)),
        ((29,), (0.0, -0.01)), ((21,), (0.0, 0.035)), ((20,), (0.0, 0.02)), (("glabella",), (0.0, 0.03)),
        ((50,), (0.0, -0.065)), ((51,), (0.0, -0.07)), ((49,), (0.0, -0.045)), ((61,), (0.0, -0.055)),
        ((62,), (0.0, -0.06)), (("nasolabial",), (0.015, -0.05)),
        (("upper_cheek",), (0.0, -0.03)), (("infraorbital",), (0.0, -0.02)), ((40, 41), (0.0, -0.015)),
    ],
    12: [  # lip corner puller
        ((48,), (0.10, -0.11)), ((60,), (0.085, -0.09)), ((49,), (0.045, -0.05)), ((59,), (0.05, -0.065)),
        ((50,), (0.02, -0.015)), ((58,), (0.02, -0.025)), ((61, 67), (0.02, -0.03)),
        (("nasolabial",), (0.04, -0.05)), (("upper_cheek",), (0.02, -0.04)), (("lower_cheek",), (0.03, -0.04)),
        (("infraorbital",), (0.0, -0.015)), ((40, 41), (0.0, -0.01)),
    ],
    15: [  # lip corner depressor
        ((48,), (-0.01, 0.09)), ((60,), (-0.01, 0.09)), ((59,), (0.0, 0.045)), ((49,), (0.0, 0.035)),
        ((58,), (0.0, 0.02)), ((50,), (0.0, 0.01)), ((67,), (0.0, 0.03)), ((61,), (0.0, 0.02)),
        (("chin_side",), (0.0, 0.03)), (("lower_cheek",), (0.0, 0.02)),
    ],
    20: [  # lip stretcher
        ((48,), (0.12, 0.02)), ((60,), (0.10, 0.015)), ((49,), (0.06, 0.0)), ((59,), (0.06, 0.0)),
        ((50,), (0.025, 0.0)), ((58,), (0.025, 0.0)), ((61, 67), (0.04, 0.0)),
        (("nasolabial",), (0.06, 0.0)), (("lower_cheek",), (0.07, 0.0)), ((51,), (0.0, 0.01)), ((57,), (0.0, -0.01)),
    ],
    23: [  # lip tightener: lips narrowed and thinned
        ((48,), (-0.05, 0.0)), ((60,), (-0.045, 0.0)), ((49,), (-0.03, 0.01)), ((50,), (0.0, 0.02)),
        ((51,), (0.0, 0.02)), ((59,), (-0.03, -0.02)), ((58,), (0.0, -0.025)), ((57,), (0.0, -0.025)),
        ((61, 67), (-0.02, 0.0)),
    ],
    26: [  # jaw drop
        ((57,), (0.0, 0.26)), ((58,), (0.0, 0.25)), ((59,), (0.0, 0.22)), ((66,), (0.0, 0.25)), ((67,), (0.0, 0.24)),
        ((48,), (0.0, 0.06)), ((60,), (0.0, 0.07)), ((61, 62), (0.0, -0.005)),
        ((8,), (0.0, 0.24)), ((7,), (0.0, 0.22)), ((6,), (0.0, 0.17)), ((5,), (0.0, 0.12)), ((4,), (0.0, 0.07)),
        ((3,), (0.0, 0.03)), (("chin_mid",), (0.0, 0.245)), (("chin_side",), (0.0, 0.23)),
        (("lower_cheek",), (0.0, 0.08)), (("nasolabial",), (0.0, 0.015)),
    ],
}


# All moves above are multiplied by this: the tables keep the FACS-manual proportions between
# AUs, the gain sets how strong intensity 1 is (tuned so a 64 px CNN separates the classes
# on held-out subjects at intensity 0.6 while no triangle folds at 1.0 with maximal jitter).
AU_GAIN = 1.25


def _mirror_index(i: int | str) -> tuple[int, int | None]:
    """(index, mirrored index or None for midline points) in the control-point array."""
    if isinstance(i, str):
        if i in AUX_INDEX:  # midline aux point
            return AUX_INDEX[i], None
        return AUX_INDEX[f"r_{i}"], AUX_INDEX[f"l_{i}"]
    j = int(MIRROR[i])
    return i, (None if j == i else j)


def au_displacement(au: int) -> np.ndarray:
    """(N_MOVABLE, 2) move of landmarks + aux points for one AU at intensity 1 (face units)."""
    d = np.zeros((N_MOVABLE, 2))
    for points, (out, down) in AU_MOVES[au]:
        for p in points:
            i, j = _mirror_index(p)
            if j is None:
                if out:
                    raise ValueError(f"AU{au}: midline point {p} cannot move outwards")
                d[i] += (0.0, down)
            else:
                d[i] += (-out, down)  # image-left side: outwards is -x
                d[j] += (out, down)
    return d * AU_GAIN


AU_DISPLACEMENTS: dict[int, np.ndarray] = {au: au_displacement(au) for au in AU_MOVES}


class Painter:
    """Draws AU skin cues in output pixels, positioned relative to the *moved* control points.

    ``shade`` darkens (folds, furrows, shadows), ``light`` brightens (raised cheeks, fold
    highlights); both are anti-aliased and blurred to a skin-like softness.
    """

    def __init__(self, shape: tuple[int, int], ctrl: np.ndarray, unit_px: float, angle: float):
        self.shade = np.zeros(shape, np.float32)
        self.light = np.zeros(shape, np.float32)
        self.ctrl = ctrl  # all control points in output px
        self.u = unit_px
        c, s = np.cos(angle), np.sin(angle)
        self.rot = np.array([[c, -s], [s, c]])

    def at(self, p: int | str, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        """Output px of control point ``p`` plus an offset in face units (x to image right)."""
        base = self.ctrl[control_index(p)]
        return base + self.rot @ np.array([dx, dy]) * self.u

    def off(self, xy: np.ndarray, dx: float, dy: float) -> np.ndarray:
        return xy + self.rot @ np.array([dx, dy]) * self.u

    def line(self, pts: list[np.ndarray], strength: float, width: float = 0.02, highlight: float = 0.4,
             layer: str = "shade") -> None:
        """A skin fold: dark crease with a faint highlight just above it."""
        p = np.array(pts, dtype=np.float64)
        if len(p) > 2:  # smooth polyline through the given points
            t = np.linspace(0, 1, len(p))
            tt = np.linspace(0, 1, 6 * len(p))
            p = np.stack([np.interp(tt, t, p[:, 0]), np.interp(tt, t, p[:, 1])], axis=1)
        thick = max(1, int(round(width * self.u)))
        target = self.shade if layer == "shade" else self.light
        cv2.polylines(target, [np.round(p * 16).astype(np.int32)], False, float(strength), thick, cv2.LINE_AA, shift=4)
        if highlight and layer == "shade":
            q = p + self.rot @ np.array([0.0, -0.025]) * self.u
            cv2.polylines(
                self.light,
                [np.round(q * 16).astype(np.int32)],
                False,
                float(strength * highlight),
                thick,
                cv2.LINE_AA,
                shift=4,
            )

    def blob(self, centre: np.ndarray, radii: tuple[float, float], strength: float, layer: str) -> None:
        target = self.shade if layer == "shade" else self.light
        ang = float(np.degrees(np.arctan2(self.rot[1, 0], self.rot[0, 0])))
        axes = (max(1.0, radii[0] * self.u * 2), max(1.0, radii[1] * self.u * 2))
        tmp = np.zeros_like(target)
        cv2.ellipse(tmp, ((float(centre[0]), float(centre[1])), axes, ang), float(strength), -1, cv2.LINE_AA)
        target += cv2.GaussianBlur(tmp, (0, 0), 0.25 * min(axes))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        s = 0.6 + 0.004 * self.u
        return cv2.GaussianBlur(self.shade, (0, 0), s), cv2.GaussianBlur(self.light, (0, 0), s)


def _both_sides(fn):
    """Run a one-sided drawing for the image-left side (sign -1) and the right side (+1)."""

    def run(p: Painter, k: float) -> None:
        fn(p, k, -1, "r_")
        fn(p, k, +1, "l_")

    return run


def _au1(p: Painter, k: float) -> None:
    # Horizontal wrinkles in the centre of the forehead, above the raised inner brows.
    for n, dy in enumerate((-0.1, -0.17, -0.24)):
        y_ref = p.at(21)[1] * 0.5 + p.at(22)[1] * 0.5
        mid = p.at("glabella")
        mid = np.array([mid[0], y_ref]) + p.rot @ np.array([0, dy]) * p.u
        pts = [p.off(mid, x, 0.03 * abs(x) / 0.35) for x in (-0.35, -0.12, 0.12, 0.35)]
        p.line(pts, 0.22 * k * (1 - 0.2 * n))


@_both_sides
def _au2(p: Painter, k: float, side: int, pre: str) -> None:
    # Arched wrinkles over the lateral forehead, following the raised outer brows.
    for n, dy in enumerate((-0.1, -0.18)):
        o, m = (17, 19) if side < 0 else (26, 24)
        pts = [p.at(o, 0.0, dy + 0.02), p.at(m, 0.0, dy), p.at(m, -side * 0.18, dy + 0.01)]
        p.line(pts, 0.18 * k * (1 - 0.25 * n))


def _au4(p: Painter, k: float) -> None:
    # Vertical furrows between the lowered brows and a shadow under the brow ridge.
    for side, b in ((-1, 21), (1, 22)):
        top = p.at(b, -side * 0.02, -0.14)
        bot = p.at(b, -side * 0.045, 0.08)
        p.line([top, bot], 0.3 * k, width=0.022, highlight=0.2)
        p.blob(p.at(b, side * 0.08, 0.1), (0.12, 0.05), 0.12 * k, "shade")
    p.blob(p.at("glabella", 0.0, 0.02), (0.06, 0.1), 0.1 * k, "shade")


def _au5(p: Painter, k: float) -> None:
    # More sclera shows: the exposed upper eye region is brighter, the lid crease sharper.
    for a, b in ((37, 38), (43, 44)):
        c = (p.at(a) + p.at(b)) / 2
        p.blob(p.off(c, 0, 0.03), (0.09, 0.025), 0.12 * k, "light")
        p.line(
            [p.at(a - 1 if a == 37 else 42, 0, -0.04), p.at(a, 0, -0.06), p.at(b, 0, -0.06), p.at(b + 1, 0, -0.04)],
            0.12 * k,
            width=0.015,
            highlight=0.0,
        )


@_both_sides
def _au6(p: Painter, k: float, side: int, pre: str) -> None:
    corner = p.at(36 if side < 0 else 45)
    for ang in (-0.35, 0.0, 0.35):  # crow's feet fanning out from the outer eye corner
        d = np.array([side * np.cos(ang), np.sin(ang)])
        pts = [p.off(corner, *(d * 0.08)), p.off(corner, *(d * 0.2))]
        p.line(pts, 0.22 * k, width=0.016, highlight=0.2)
    p.blob(p.at(pre + "upper_cheek", 0.0, 0.02), (0.2, 0.12), 0.12 * k, "light")  # raised cheek
    lo = (41, 40) if side < 0 else (46, 47)
    p.line([p.at(lo[0], 0, 0.07), p.at(lo[1], 0, 0.07)], 0.15 * k, width=0.02, highlight=0.3)


@_both_sides
def _au7(p: Painter, k: float, side: int, pre: str) -> None:
    # Lower-lid bulge: a crease just under the tightened lower lid.
    lo = (36, 41, 40, 39) if side < 0 else (45, 46, 47, 42)
    pts = [p.at(lo[0], 0, 0.03), p.at(lo[1], 0, 0.045), p.at(lo[2], 0, 0.045), p.at(lo[3], 0, 0.03)]
    p.line(pts, 0.2 * k, width=0.018, highlight=0.5)


def _au9(p: Painter, k: float) -> None:
    # Horizontal wrinkles across the nose root and deepened upper nasolabial furrows.
    for dy in (0.0, 0.06, 0.12):
        c = p.at(28, 0.0, dy)
        p.line([p.off(c, -0.12, 0.02), p.off(c, 0, -0.01), p.off(c, 0.12, 0.02)], 0.3 * k, width=0.02)
    for side, w in ((-1, 31), (1, 35)):
        p.line(
            [p.at(w, side * 0.04, -0.05), p.at(w, side * 0.07, 0.06), p.at(w, side * 0.09, 0.15)], 0.3 * k, width=0.025
        )


@_both_sides
def _au12(p: Painter, k: float, side: int, pre: str) -> None:
    # Nasolabial fold from the nose wing to beyond the mouth corner, and rounded cheeks.
    wing, corner = (31, 48) if side < 0 else (35, 54)
    pts = [p.at(wing, side * 0.05, -0.02), p.at(corner, side * 0.12, -0.12), p.at(corner, side * 0.1, 0.05)]
    p.line(pts, 0.35 * k, width=0.028, highlight=0.5)
    p.blob(p.at(pre + "upper_cheek", side * 0.02, 0.08), (0.18, 0.13), 0.13 * k, "light")
    p.blob(p.at(corner, side * 0.05, 0.0), (0.03, 0.03), 0.2 * k, "shade")  # dimple at the corner


@_both_sides
def _au15(p: Painter, k: float, side: int, pre: str) -> None:
    # Corners pulled down: short folds below them and a shadow at the chin side.
    corner = 48 if side < 0 else 54
    p.line([p.at(corner, side * 0.02, 0.03), p.at(corner, side * 0.04, 0.15)], 0.25 * k, width=0.022)
    p.blob(p.at(corner, 0.0, 0.1), (0.06, 0.05), 0.1 * k, "shade")


@_both_sides
def _au20(p: Painter, k: float, side: int, pre: str) -> None:
    # Lips stretched sideways: small vertical creases lateral to the corners.
    corner = 48 if side < 0 else 54
    p.line([p.at(corner, side * 0.05, -0.06), p.at(corner, side * 0.065, 0.06)], 0.25 * k, width=0.018)
    p.line([p.at(corner, side * 0.1, -0.1), p.at(corner, side * 0.13, 0.1)], 0.15 * k, width=0.018)


def _au23(p: Painter, k: float) -> None:
    # Tightened lips: the red margin narrows, so the lip border darkens and thins.
    upper = [p.at(i) for i in (48, 49, 50, 51, 52, 53, 54)]
    lower = [p.at(i) for i in (54, 55, 56, 57, 58, 59, 48)]
    p.line(upper, 0.25 * k, width=0.02, highlight=0.0)
    p.line(lower, 0.25 * k, width=0.02, highlight=0.0)
    p.line([p.at(57, 0.0, 0.06), p.at(57, 0.0, 0.12)], 0.15 * k, width=0.02)


AU_PAINT = {1: _au1, 2: _au2, 4: _au4, 5: _au5, 6: _au6, 7: _au7, 9: _au9, 12: _au12, 15: _au15, 20: _au20, 23: _au23}
# AU26 needs no painter: the mouth opening is shaded from the inner-lip polygon in render.py.
