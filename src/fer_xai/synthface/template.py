"""The canonical face frame every synthetic face is drawn in.

Geometry is written in *face units*: the eye-centre midpoint is the origin, x points to the
image right, y down, and 1 unit is the inter-ocular distance (IOD). The template face is the
symmetrised average of the bundled photos' dlib landmarks with a closed, neutral mouth (the
astronaut smiles with parted lips; warping her to this shape neutralises the smile).

Besides the 68 landmarks the warp uses auxiliary control points (forehead, glabella, cheeks,
nasolabial area, chin) so that an action unit deforms only the skin it should, a ring around
the head that never moves (hair and background stay put) and a far frame that covers the
image for any pose jitter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from . import landmarks as lm
from .base_faces import BasePhoto, load_base_photos
from .warp import dense_map, min_area_ratio, triangulate

# Where the eye midpoint sits in the output image and how large the IOD is, as fractions of the
# image size: the dlib detection box is then ~0.6 of the image, well above its 80 px minimum.
EYE_MID = (0.50, 0.43)
IOD_FRAC = 0.27
PAD_FRAC = 0.125  # margin of the template canvas around the output frame (room for pose jitter)

# Neutral closed mouth (face units). The inner lips keep a 0.02 gap so that opening the mouth
# never maps a visible triangle onto a degenerate one.
_NEUTRAL_MOUTH = {
    48: (-0.46, 0.91), 49: (-0.30, 0.865), 50: (-0.14, 0.855), 51: (0.0, 0.875),
    52: (0.14, 0.855), 53: (0.30, 0.865), 54: (0.46, 0.91), 55: (0.30, 1.02),
    56: (0.14, 1.065), 57: (0.0, 1.075), 58: (-0.14, 1.065), 59: (-0.30, 1.02),
    60: (-0.38, 0.915), 61: (-0.13, 0.935), 62: (0.0, 0.94), 63: (0.13, 0.935),
    64: (0.38, 0.915), 65: (0.13, 0.955), 66: (0.0, 0.96), 67: (-0.13, 0.955),
}

# Auxiliary control points on the image-left half (x < 0) or on the midline; mirrored below.
_AUX_HALF: dict[str, tuple[float, float]] = {
    "forehead_low_outer": (-0.68, -0.8),
    "forehead_low_inner": (-0.22, -0.72),
    "forehead_high_outer": (-0.85, -0.92),
    "forehead_high_inner": (-0.32, -0.95),
    "temple": (-1.1, -0.55),
    "infraorbital": (-0.50, 0.22),
    "upper_cheek": (-0.58, 0.45),
    "nasolabial": (-0.62, 0.72),
    "lower_cheek": (-0.64, 1.12),
    "chin_side": (-0.28, 1.30),
}
_AUX_MID: dict[str, tuple[float, float]] = {
    "forehead_high_mid": (0.0, -0.97),
    "forehead_low_mid": (0.0, -0.72),
    "glabella": (0.0, -0.22),
    "chin_mid": (0.0, 1.34),
}


def _aux_points() -> tuple[list[str], np.ndarray]:
    names, pts = [], []
    for name, (x, y) in _AUX_HALF.items():
        names += [f"r_{name}", f"l_{name}"]
        pts += [(x, y), (-x, y)]
    for name, xy in _AUX_MID.items():
        names.append(name)
        pts.append(xy)
    return names, np.array(pts, dtype=np.float64)


AUX_NAMES, AUX_POINTS = _aux_points()
N_AUX = len(AUX_NAMES)
AUX_INDEX = {name: lm.N_LANDMARKS + i for i, name in enumerate(AUX_NAMES)}


def _ring(n: int = 20, centre=(0.0, 0.35), radii=(1.55, 2.0)) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([centre[0] + radii[0] * np.cos(a), centre[1] + radii[1] * np.sin(a)], axis=1)


def _frame(r: float = 4.0, centre=(0.0, 0.3)) -> np.ndarray:
    s = np.array([-1.0, 0.0, 1.0])
    pts = [(x, y) for x in s for y in s if (x, y) != (0.0, 0.0)]
    return np.array(pts) * r + np.array(centre)


RING_POINTS = _ring()
FRAME_POINTS = _frame()
N_MOVABLE = lm.N_LANDMARKS + N_AUX  # landmarks + aux: what identity and expressions may move


def _topology_shape(control: np.ndarray) -> np.ndarray:
    """Control points with the mouth parted, used only to choose the triangulation.

    Delaunay on a closed mouth joins the inner lower lip to the outer upper lip; on a parted
    mouth every triangle stays inside one lip or inside the opening, which is the topology
    that survives both the smiling photo and a jaw drop without folding.
    """
    pts = control.copy()
    lower = [55, 56, 57, 58, 59, 65, 66, 67]
    pts[lower, 1] += 0.15
    pts[[60, 64], 1] += 0.05
    return pts


def mirror_units(pts68: np.ndarray) -> np.ndarray:
    """Mirror a 68-point shape in face units about the vertical midline."""
    m = pts68[lm.MIRROR].copy()
    m[:, 0] *= -1
    return m


def template_shape(bases: tuple[BasePhoto, ...]) -> np.ndarray:
    """Neutral symmetric 68-point template (face units) from the bases' dlib landmarks."""
    shapes = [lm.apply_affine(lm.eye_frame(b.landmarks), b.landmarks) for b in bases]
    mean = np.mean(shapes, axis=0)
    sym = (mean + mirror_units(mean)) / 2
    for i, xy in _NEUTRAL_MOUTH.items():
        sym[i] = xy
    return sym


@dataclass(frozen=True)
class Template:
    """The template frame at one output size, with the bases warped into it."""

    size: int
    pad: int
    iod_px: float
    shape68: np.ndarray  # (68, 2) face units
    control: np.ndarray  # (n, 2) face units: landmarks, aux, ring, frame
    triangles: np.ndarray  # (k, 3) indices into ``control``
    textures: tuple[np.ndarray, ...]  # (C, C, 3) float32 0..1 canvases: each base and its mirror
    texture_names: tuple[str, ...]

    @property
    def canvas(self) -> int:
        return self.size + 2 * self.pad

    def to_output(self, units: np.ndarray) -> np.ndarray:
        """Face units -> output pixels before pose jitter."""
        return np.asarray(units) * self.iod_px + np.array(EYE_MID) * self.size

    def to_canvas(self, units: np.ndarray) -> np.ndarray:
        return self.to_output(units) + self.pad

    def from_output(self, px: np.ndarray) -> np.ndarray:
        return (np.asarray(px) - np.array(EYE_MID) * self.size) / self.iod_px


def _fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 affine taking ``src`` to ``dst``."""
    a = np.concatenate([src, np.ones((len(src), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return sol.T


def _warp_base(base: BasePhoto, tpl_control: np.ndarray, tri: np.ndarray, size: int, pad: int,
               iod_px: float) -> np.ndarray:
    """Warp one photo so that its landmarks land on the template's (canvas pixels)."""
    canvas = size + 2 * pad
    # Where the template's non-landmark control points lie in the photo: an affine fit on the
    # rigid part of the face (brows, eyes, nose, jaw), not on the smiling mouth.
    rigid = np.r_[0:48]
    aff = _fit_affine(tpl_control[rigid], base.landmarks[rigid])
    src = lm.apply_affine(aff, tpl_control)
    src[: lm.N_LANDMARKS] = base.landmarks
    dst = tpl_control * iod_px + np.array(EYE_MID) * size + pad
    ratio = min_area_ratio(lm.apply_affine(aff, tpl_control), src, tri)
    if ratio < 0:  # 0 is allowed: a closed mouth in the photo is a degenerate source triangle
        raise RuntimeError(f"base photo {base.name}: landmarks fold the template triangulation")
    img = base.image.astype(np.float32) / 255.0
    scale = iod_px / lm.inter_ocular(base.landmarks)
    if scale < 1:  # low-pass before shrinking so the texture does not alias
        img = cv2.GaussianBlur(img, (0, 0), 0.45 / scale)
    mx, my = dense_map(dst, src, tri, (canvas, canvas))
    out = cv2.remap(img, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0, 1)


def _fill_forehead(img: np.ndarray, size: int, pad: int, iod_px: float) -> np.ndarray:
    """Replace what lies above the photos' skin line (the astronaut's fringe, Grace Hopper's cap)
    with plain forehead skin, so that the subject's own hair can be drawn at any hairline
    without a second, photographed one showing beneath it.

    The skin line ``y = -0.48 + 0.25 x^2`` (face units) was read off both photos warped to the
    template. Above it: the mean colour of a central forehead patch, shaded darker towards the
    temples like a curved forehead, joined with a soft seam.
    """
    c = img.shape[0]
    ys, xs = np.mgrid[0:c, 0:c].astype(np.float32)
    origin = np.array(EYE_MID) * size + pad
    ux, uy = (xs - origin[0]) / iod_px, (ys - origin[1]) / iod_px
    patch = (np.abs(ux) < 0.3) & (uy > -0.46) & (uy < -0.38)
    colour = img[patch].mean(axis=0)
    shading = (1 - 0.22 * np.clip(ux, -1.2, 1.2) ** 2)[..., None]
    line = -0.48 + 0.25 * ux**2
    seam = np.clip((line - uy) / 0.06 + 0.5, 0, 1)[..., None]  # 0 below the line, 1 above
    return (img * (1 - seam) + colour * shading * seam).astype(np.float32)


@functools.lru_cache(maxsize=4)
def build_template(size: int) -> Template:
    bases = load_base_photos()
    shape68 = template_shape(bases)
    control = np.concatenate([shape68, AUX_POINTS, RING_POINTS, FRAME_POINTS], axis=0)
    tri = triangulate(_topology_shape(control))
    if min_area_ratio(_topology_shape(control), control, tri) <= 0:
        raise RuntimeError("template triangulation folds on the neutral template")
    pad = int(round(PAD_FRAC * size))
    iod_px = IOD_FRAC * size
    textures, names = [], []
    for b in bases:
        t = _fill_forehead(_warp_base(b, control, tri, size, pad, iod_px), size, pad, iod_px)
        textures += [t, np.ascontiguousarray(t[:, ::-1])]
        names += [b.name, f"{b.name}[mirrored]"]
    return Template(size, pad, iod_px, shape68, control, tri, tuple(textures), tuple(names))


def control_index(p: int | str) -> int:
    """Index into the control points of a landmark number or an auxiliary point name."""
    return AUX_INDEX[p] if isinstance(p, str) else int(p)
