"""Render one image of a subject: expression warp, skin cues, pose, light, noise, AU mask.

Every image is rendered twice with identical pose, light and noise: once with the expression
and once neutral. The AU-region mask is where the two differ (content moved more than
``MASK_MOVE_PX`` or colour changed by more than ``MASK_DIFF``), so it is exactly the planted
evidence; the neutral twin also lets tests erase that evidence and check nothing else is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..labels import EXPRESSION_AUS
from .action_units import AU_DISPLACEMENTS, AU_PAINT, Painter
from .identity import Subject
from .landmarks import apply_affine, similarity
from .template import N_MOVABLE, Template
from .warp import dense_map, min_area_ratio, triangle_index

MASK_MOVE_PX = 1.0  # content displaced by more than this many output pixels is AU region
MASK_DIFF = 4.0 / 255.0  # ... and so is any colour change larger than this (before noise)
ALL_AUS: tuple[int, ...] = tuple(sorted(AU_DISPLACEMENTS))


@dataclass(frozen=True)
class Jitter:
    """Per-image nuisance, drawn without knowing the label (same draws for every image)."""

    angle: float  # radians
    scale: float
    dx: float  # output px
    dy: float
    gain: float  # global exposure
    noise: float  # sensor noise SD (0..1 scale)
    noise_seed: int
    au_gain: dict[int, float] = field(default_factory=dict)  # natural per-AU variation


def draw_jitter(rng: np.random.Generator, size: int) -> Jitter:
    angle = float(rng.uniform(-np.deg2rad(4.0), np.deg2rad(4.0)))
    scale = float(rng.uniform(0.96, 1.04))
    dx, dy = (float(v) for v in rng.uniform(-0.025 * size, 0.025 * size, 2))
    gain = float(rng.uniform(0.93, 1.07))
    noise = float(rng.uniform(0.5, 2.5)) / 255.0
    noise_seed = int(rng.integers(0, 2**31 - 1))
    au_gain = {au: float(rng.uniform(0.9, 1.1)) for au in ALL_AUS}
    return Jitter(angle, scale, dx, dy, gain, noise, noise_seed, au_gain)


@dataclass(frozen=True)
class Rendered:
    image: np.ndarray  # (N, N, 3) uint8
    neutral: np.ndarray  # (N, N, 3) uint8: same subject, pose, light and noise, no expression
    landmarks: np.ndarray  # (68, 2) float64, output pixels
    mask: np.ndarray  # (N, N) uint8 0/255
    neutral_landmarks: np.ndarray  # (68, 2) landmarks of the neutral twin
    aus: tuple[int, ...]
    scale_back: float = 1.0  # expression moves were shrunk by this factor to avoid folds (rare)


def pose_matrix(tpl: Template, subject: Subject, jit: Jitter) -> np.ndarray:
    """2x3 map from un-posed output pixels to output pixels: rotate/scale about the face centre."""
    angle = subject.pose[0] + jit.angle
    scale = subject.pose[1] * jit.scale
    centre = tpl.to_output(np.array([0.0, 0.6]))
    m = similarity(scale, angle, 0.0, 0.0)
    m[:, 2] = centre - m[:, :2] @ centre + np.array([subject.pose[2] + jit.dx, subject.pose[3] + jit.dy])
    return m


def expression_moves(aus: tuple[int, ...], intensity: float, jit: Jitter) -> np.ndarray:
    d = np.zeros((N_MOVABLE, 2))
    for au in aus:
        d += AU_DISPLACEMENTS[au] * intensity * jit.au_gain.get(au, 1.0)
    return d


def _mouth(img: np.ndarray, ctrl: np.ndarray, unit_px: float, lip: np.ndarray) -> None:
    """Shade the opening between the inner lips: dark cavity and, when open, upper teeth."""
    inner = ctrl[60:68]
    cav = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(cav, [np.round(inner * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    opening = float(np.linalg.norm(ctrl[66] - ctrl[62]))
    # A closed mouth is a soft lip line, not a drawn stroke: fade the shading for thin gaps.
    a = cav.astype(np.float32)[..., None] / 255.0 * float(np.clip(opening / 4.0, 0.45, 1.0))
    colour = np.clip(lip * 0.28, 0, 1)
    teeth_h = min(0.35 * opening, 0.07 * unit_px)
    out = np.broadcast_to(colour, img.shape).copy()
    if teeth_h > 1.0:
        down = (ctrl[66] - ctrl[62]) / max(opening, 1e-6) * teeth_h
        upper = ctrl[60:65]
        poly = np.concatenate([upper, upper[::-1] + down])
        t = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(t, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        tt = t.astype(np.float32)[..., None] / 255.0
        # Teeth recede into shadow towards the mouth corners.
        xs = np.arange(img.shape[1], dtype=np.float32)
        centre, half = (ctrl[60, 0] + ctrl[64, 0]) / 2, max(abs(ctrl[64, 0] - ctrl[60, 0]) / 2, 1.0)
        fall = np.clip(1 - 0.6 * ((xs - centre) / half) ** 2, 0.3, 1)[None, :, None]
        out = out * (1 - tt) + np.array([0.78, 0.74, 0.66], np.float32) * 0.85 * fall * tt
    img[:] = img * (1 - a) + out * a


def _compose(tpl: Template, subject: Subject, ctrl_out: np.ndarray, index: np.ndarray, unit_px: float):
    """Warp the subject canvas to ``ctrl_out`` over the background: (float RGB, alpha, skin weight)."""
    src = tpl.to_canvas(tpl.control)
    mx, my = dense_map(ctrl_out, src, tpl.triangles, index.shape, index=index)
    # Replicate: the body runs off the bottom of the canvas and must not end in a hard edge.
    head = cv2.remap(subject.canvas, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = head[..., 3:4]
    img = head[..., :3] + subject.background * (1 - alpha)
    _mouth(img, ctrl_out, unit_px, subject.lip_colour)
    return img, alpha[..., 0], head[..., 4]


def _finish(img: np.ndarray, subject: Subject, jit: Jitter) -> np.ndarray:
    rng = np.random.default_rng(jit.noise_seed)
    noise = rng.normal(0.0, jit.noise, img.shape).astype(np.float32)
    out = img * subject.lighting * jit.gain + noise
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def clean_mask(raw: np.ndarray) -> np.ndarray:
    """Close pinholes, drop specks, dilate by one pixel; uint8 0/255."""
    m = raw.astype(np.uint8) * 255
    k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    # Fill holes: a changed region's interior (e.g. flat skin inside a moved patch) is changed too.
    inv = (m == 0).astype(np.uint8)
    _, lab_bg = cv2.connectedComponents(inv, connectivity=4)
    outside = np.unique(np.concatenate([lab_bg[0], lab_bg[-1], lab_bg[:, 0], lab_bg[:, -1]]))
    holes = (inv > 0) & ~np.isin(lab_bg, outside)
    m[holes] = 255
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    small = np.where(stats[:, cv2.CC_STAT_AREA] < 6)[0]
    small = small[small > 0]
    if len(small):
        m[np.isin(lab, small)] = 0
    return cv2.dilate(m, k3)


def render(tpl: Template, subject: Subject, expression: str | None, intensity: float, jit: Jitter) -> Rendered:
    """One image of ``subject`` showing ``expression`` (None = neutral) at ``intensity``."""
    aus = tuple(EXPRESSION_AUS[expression]) if expression else ()
    neutral_u = tpl.control.copy()
    neutral_u[:N_MOVABLE] += subject.offsets
    moves = expression_moves(aus, intensity, jit)
    shrink = 1.0
    expr_u = neutral_u.copy()
    for _ in range(12):  # guard against folds from unusual identity + AU combinations
        expr_u[:N_MOVABLE] = neutral_u[:N_MOVABLE] + moves * shrink
        if not aus or min_area_ratio(neutral_u, expr_u, tpl.triangles) >= 0.05:
            break
        shrink *= 0.85
    m = pose_matrix(tpl, subject, jit)
    unit_px = tpl.iod_px * subject.pose[1] * jit.scale
    angle = subject.pose[0] + jit.angle
    ctrl_n = apply_affine(m, tpl.to_output(neutral_u))
    ctrl_e = apply_affine(m, tpl.to_output(expr_u))
    shape = (tpl.size, tpl.size)

    idx_n = triangle_index(ctrl_n, tpl.triangles, shape)
    img_n, _, _ = _compose(tpl, subject, ctrl_n, idx_n, unit_px)
    if not aus:
        final = _finish(img_n, subject, jit)
        return Rendered(final, final, ctrl_n[:68].copy(), np.zeros(shape, np.uint8), ctrl_n[:68].copy(), aus)

    idx_e = triangle_index(ctrl_e, tpl.triangles, shape)
    img_e, alpha_e, skin_e = _compose(tpl, subject, ctrl_e, idx_e, unit_px)
    painter = Painter(shape, ctrl_e, unit_px, angle)
    for au in aus:
        if au in AU_PAINT:
            AU_PAINT[au](painter, intensity * shrink * jit.au_gain[au])
    shade, light = (layer * skin_e for layer in painter.finish())  # folds only on facial skin
    img_e = np.clip(img_e * (1 - shade[..., None]) * (1 + light[..., None]), 0, 1)

    # Ground truth: content moved (where there is a subject to move) or colour changed.
    mx, my = dense_map(ctrl_e, ctrl_n, tpl.triangles, shape, index=idx_e)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    moved = (np.hypot(mx - xs, my - ys) > MASK_MOVE_PX) & (alpha_e > 0.5)
    lit = subject.lighting * jit.gain
    changed = np.abs((img_e - img_n) * lit).max(axis=2) > MASK_DIFF
    mask = clean_mask(moved | changed)
    return Rendered(_finish(img_e, subject, jit), _finish(img_n, subject, jit), ctrl_e[:68].copy(), mask,
                    ctrl_n[:68].copy(), aus, shrink)
