"""The canonical face space every explanation is warped into (paper section 4.2).

Canonical space: ``width`` x ``height`` pixels (224 x 275); the 68 template landmarks lie in the
box (0, 0)-(width, face_box_height) (224 x 250), the rows below are margin. The warp is driven by
89 control points (1-based numbering of the published figure):

* 1-68: the 68 dlib / iBUG 300-W landmarks,
* 69-85: the 17 jaw points (1-17) copied to the top edge of the image,
* 86-89: the image corners, in the order top-left, bottom-left, top-right, bottom-right.

The top edge and the corners are the image's outer edges: with pixel centres at integers they
lie at -0.5 and ``size - 0.5``. So every pixel centre is strictly inside the triangulation, and
a face's grid is exact for any resolution of its image (:meth:`WarpGrid.rescaled`): the same
grid serves a 48-px and a 224-px explanation map of one face, and its full-size mask.

The template is a data file in the package (``fer_xai/data/canonical_template.json``, made by
``scripts/make_canonical_template.py``): dlib's 68-point predictor run on a blank image inside
the face box returns its mean face, which is how the published template was obtained. A
``procrustes`` template (the generalized-Procrustes mean of a set of landmarks, placed on the
dlib template by a similarity) is the alternative.

The template's control points are Delaunay-triangulated once. For each face, one affine per
triangle maps canonical to source coordinates; evaluated at every canonical pixel this gives a
dense sampling grid (``map_x``, ``map_y``) built once per image and applied with ``cv2.remap``
to the face and to any number of maps of that image (nearest sampling for label maps, linear
where asked). Coordinates are pixel centres, x then y, as in the rest of the project.

Faces that would fold the warp are rejected per image (:class:`WarpRejected`, the reason names
the triangle): each triangle's signed height in the face, scaled to canonical pixels and signed
by the template's orientation, must stay above ``-max_fold_px``. Smaller folds and collapsed
(degenerate, zero-height) triangles are tolerated and counted: dlib's inner-lip points of a
closed mouth cross by a pixel or two. With ``max_fold_px = 0`` any flipped or degenerate
triangle rejects the face. Landmarks outside the image or not finite are rejected too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ..errors import FerXaiError

log = logging.getLogger(__name__)

WIDTH = 224
HEIGHT = 275
FACE_BOX_HEIGHT = 250
N_LANDMARKS = 68
N_JAW = 17
N_CONTROL = N_LANDMARKS + N_JAW + 4  # 89
TEMPLATE_FILE = "canonical_template.json"
TEMPLATE_SOURCES = ("dlib_mean", "procrustes")
INTERPOLATIONS: dict[str, int] = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR}
# Signed heights (canonical px) at or below this are a collapsed (degenerate) triangle.
DEGENERATE_EPS = 1e-6


class CanonicalError(FerXaiError, ValueError):
    """A template or configuration that cannot define a canonical space."""


class WarpRejected(ValueError):
    """One face cannot be warped into canonical space; ``reason`` is short and machine-sortable."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


# ----------------------------------------------------------------------------------- template


def point_name(i: int) -> str:
    """1-based name of control point index ``i`` (0-based) as in the published figure."""
    return str(i + 1)


def template_file() -> Path:
    return Path(str(resources.files("fer_xai") / "data" / TEMPLATE_FILE))


@lru_cache(maxsize=4)
def read_template_file(path: str | None = None) -> dict:
    """The packaged template record (landmarks, face box, provenance); errors name the file."""
    p = Path(path) if path else template_file()
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise CanonicalError(
            f"{p}: canonical template file not found (run scripts/make_canonical_template.py)") from exc
    except json.JSONDecodeError as exc:
        raise CanonicalError(f"{p}: not valid JSON: {exc}") from exc
    lm = np.asarray(data.get("landmarks", []), dtype=np.float64)
    if lm.shape != (N_LANDMARKS, 2) or not np.isfinite(lm).all():
        raise CanonicalError(f"{p}: 'landmarks' must be 68 finite (x, y) pairs, got shape {lm.shape}")
    for key in ("width", "height", "face_box"):
        if key not in data:
            raise CanonicalError(f"{p}: missing key {key!r}")
    return data


def dlib_mean_landmarks(width: int = WIDTH, height: int = HEIGHT, face_box_height: int = FACE_BOX_HEIGHT) -> np.ndarray:
    """Run dlib's 68-point predictor on a blank ``height`` x ``width`` image inside the box
    (0, 0)-(width, face_box_height): with no image evidence it returns its mean face."""
    import dlib

    from .dlib_models import predictor, shape_to_array

    blank = np.zeros((height, width), dtype=np.uint8)
    shape = predictor()(blank, dlib.rectangle(0, 0, width, face_box_height))
    return shape_to_array(shape).astype(np.float64)


def _scale_points(points: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Points after resizing their image by (sx, sy) (pixel-centre convention)."""
    out = np.asarray(points, dtype=np.float64).copy()
    out[..., 0] = (out[..., 0] + 0.5) * sx - 0.5
    out[..., 1] = (out[..., 1] + 0.5) * sy - 0.5
    return out


def dlib_mean_template(width: int = WIDTH, face_box_height: int = FACE_BOX_HEIGHT) -> np.ndarray:
    """The packaged dlib mean face placed in the box (0, 0)-(width, face_box_height)."""
    data = read_template_file()
    lm = np.asarray(data["landmarks"], dtype=np.float64)
    _, _, bw, bh = data["face_box"]
    if (bw, bh) == (width, face_box_height):
        return lm
    return _scale_points(lm, width / bw, face_box_height / bh)


def _normalize_shapes(shapes: np.ndarray) -> np.ndarray:
    x = shapes - shapes.mean(axis=-2, keepdims=True)
    norm = np.linalg.norm(x, axis=(-2, -1), keepdims=True)
    if np.any(norm < 1e-12):
        raise CanonicalError("procrustes: a shape has all its landmarks at one point")
    return x / norm


def _rotate_onto(shapes: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotate each centred unit shape (N, K, 2) onto ``target`` (K, 2); no reflections."""
    m = np.einsum("nki,kj->nij", shapes, target)  # (N, 2, 2)
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, -1] *= d[:, None]
    r = u @ vt
    return shapes @ r


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (scale, rotation R, translation t) with ``s * src @ R + t ~ dst``."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    sig = sig.copy()
    sig[-1] *= d
    u[:, -1] *= d
    r = u @ vt
    s = sig.sum() / (a**2).sum()
    return float(s), r, md - s * ms @ r


def procrustes_template(
    landmarks: np.ndarray, width: int = WIDTH, face_box_height: int = FACE_BOX_HEIGHT,
    iterations: int = 50, tol: float = 1e-10,
) -> np.ndarray:
    """Generalized-Procrustes mean of (N, 68, 2) landmarks, placed on the dlib mean template.

    Shapes are centred, scaled to unit norm and rotated (no reflection) onto the running mean
    until it stops changing; the mean is then mapped by the least-squares similarity onto the
    dlib template in the same box, so both templates occupy the canonical face box alike.
    """
    shapes = np.asarray(landmarks, dtype=np.float64)
    if shapes.ndim != 3 or shapes.shape[1:] != (N_LANDMARKS, 2) or len(shapes) == 0:
        raise CanonicalError(f"procrustes: expected (N, 68, 2) landmarks, got {shapes.shape}")
    if not np.isfinite(shapes).all():
        raise CanonicalError("procrustes: landmarks contain NaN or inf")
    ref = dlib_mean_template(width, face_box_height)
    x = _normalize_shapes(shapes)
    mean = _normalize_shapes(ref[None])[0]
    for _ in range(iterations):
        x = _rotate_onto(x, mean)
        new = _normalize_shapes(x.mean(axis=0)[None])[0]
        new = _rotate_onto(new[None], mean)[0]
        delta = float(np.abs(new - mean).max())
        mean = new
        if delta < tol:
            break
    s, r, t = similarity_fit(mean, ref)
    return s * mean @ r + t


# ------------------------------------------------------------------------------ control points


def jaw_top_order(template_landmarks: np.ndarray) -> np.ndarray:
    """Jaw indices sorted by the template's x: the left-to-right order of points 69-85."""
    return np.argsort(np.asarray(template_landmarks)[:N_JAW, 0], kind="stable")


def control_points(
    landmarks: np.ndarray, width: int, height: int, top_order: np.ndarray | None = None
) -> np.ndarray:
    """The 89 control points of a face in an image of ``width`` x ``height`` pixels.

    ``top_order`` (from :func:`jaw_top_order` of the template) assigns the face's jaw x values,
    sorted, to the top-edge points in the template's left-to-right order. Copied literally
    (``top_order=None``), two jaw points whose x order differs from the template's (the
    template's points 1-2 and 15-17 are 1 px apart) flip a top-edge triangle; sorted, the top
    edge holds exactly the same x values and never folds.
    """
    lm = np.asarray(landmarks, dtype=np.float64).reshape(N_LANDMARKS, 2)
    top = np.full((N_JAW, 2), -0.5, dtype=np.float64)  # the image's top edge
    if top_order is None:
        top[:, 0] = lm[:N_JAW, 0]
    else:
        top[np.asarray(top_order), 0] = np.sort(lm[:N_JAW, 0])
    x1, y1 = width - 0.5, height - 0.5
    corners = np.array([[-0.5, -0.5], [-0.5, y1], [x1, -0.5], [x1, y1]])
    return np.vstack([lm, top, corners])


def signed_areas(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = points[tri[:, 0]], points[tri[:, 1]], points[tri[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def signed_heights(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Twice the signed area over the longest edge: how far each triangle is from a line."""
    p = points[tri]  # (T, 3, 2)
    edges = np.linalg.norm(p - np.roll(p, -1, axis=1), axis=2).max(axis=1)
    area = signed_areas(points, tri)
    return np.divide(2.0 * area, edges, out=np.zeros_like(area), where=edges > 0)


def _rms_radius(points: np.ndarray) -> float:
    return float(np.sqrt(((points - points.mean(0)) ** 2).sum(1).mean()))


# ------------------------------------------------------------------------------------- warping


@dataclass(frozen=True)
class WarpGrid:
    """Where each canonical pixel samples its source image: build once, apply to many maps."""

    map_x: np.ndarray  # (H, W) float32 source x per canonical pixel
    map_y: np.ndarray  # (H, W) float32 source y
    src_shape: tuple[int, int]  # (h, w) of the source image the grid samples
    n_folded: int = 0  # triangles folded or collapsed within the tolerance
    max_fold: float = 0.0  # deepest tolerated fold, canonical px

    @property
    def shape(self) -> tuple[int, int]:
        return self.map_x.shape

    def apply(self, image: np.ndarray, interpolation: str = "linear") -> np.ndarray:
        """Warp one source image (H, W) or (H, W, C) of ``src_shape`` into canonical space."""
        img = np.asarray(image)
        if img.shape[:2] != tuple(self.src_shape):
            raise ValueError(f"image of shape {img.shape[:2]} warped with a grid built for {tuple(self.src_shape)}")
        try:
            flag = INTERPOLATIONS[interpolation]
        except KeyError as exc:
            raise ValueError(f"interpolation {interpolation!r}: expected one of {sorted(INTERPOLATIONS)}") from exc
        if img.dtype == np.bool_:
            img = img.astype(np.uint8)
        elif img.dtype in (np.int32, np.int64, np.uint32, np.uint64):
            if interpolation != "nearest":
                raise ValueError("integer label maps must be warped with nearest sampling")
            if img.min(initial=0) < -(2**31) or img.max(initial=0) >= 2**31:
                raise ValueError("label values do not fit in int32")
            # cv2.remap has no int32 nearest path for every build: sample indices via float64.
            return self.apply(img.astype(np.float64), "nearest").astype(img.dtype)
        elif img.dtype == np.float16:
            img = img.astype(np.float32)
        # Samples lie within the image's outer edges (-0.5 .. size - 0.5): the outer half pixel
        # repeats the edge pixel instead of fading to a constant.
        return cv2.remap(img, self.map_x, self.map_y, flag, borderMode=cv2.BORDER_REPLICATE)

    def apply_many(self, images: np.ndarray, interpolation: str = "linear") -> np.ndarray:
        """Warp a stack (N, h, w) of maps of this image; returns (N, H, W)."""
        if len(images) == 0:
            return np.zeros((0, *self.shape), dtype=np.asarray(images).dtype)
        return np.stack([self.apply(m, interpolation) for m in images])

    def rescaled(self, src_shape: tuple[int, int]) -> WarpGrid:
        """The same face's grid for its image resized to ``src_shape``.

        Exact: control points on the image's outer edges and landmarks both scale as
        ``(p + 0.5) * new / old - 0.5`` (pixel centres), and affine maps commute with scaling.
        """
        h0, w0 = self.src_shape
        h1, w1 = src_shape
        if (h0, w0) == (h1, w1):
            return self
        mx = (self.map_x + np.float32(0.5)) * np.float32(w1 / w0) - np.float32(0.5)
        my = (self.map_y + np.float32(0.5)) * np.float32(h1 / h0) - np.float32(0.5)
        return WarpGrid(mx, my, (h1, w1), self.n_folded, self.max_fold)


@dataclass(frozen=True)
class TriangleCheck:
    heights: np.ndarray  # (T,) signed heights of the face's triangles, canonical px
    n_folded: int
    max_fold: float


@dataclass
class CanonicalSpace:
    """Template, its triangulation and the per-pixel lookups shared by every warp."""

    landmarks: np.ndarray  # (68, 2) template landmarks
    width: int = WIDTH
    height: int = HEIGHT
    source: str = "dlib_mean"
    top_points: str = "sorted"  # "sorted" | "copy"
    max_fold_px: float = 3.0
    control: np.ndarray = field(init=False, repr=False)
    triangles: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lm = np.asarray(self.landmarks, dtype=np.float64)
        if lm.shape != (N_LANDMARKS, 2) or not np.isfinite(lm).all():
            raise CanonicalError(f"template landmarks must be 68 finite (x, y) pairs, got {lm.shape}")
        if self.top_points not in ("sorted", "copy"):
            raise CanonicalError(f"top_points {self.top_points!r}: expected 'sorted' or 'copy'")
        if self.max_fold_px < 0:
            raise CanonicalError("max_fold_px must be >= 0")
        inside = (lm[:, 0] > -0.5) & (lm[:, 0] < self.width - 0.5) & (lm[:, 1] > -0.5) & (lm[:, 1] < self.height - 0.5)
        if not inside.all():
            bad = [point_name(i) for i in np.flatnonzero(~inside)]
            raise CanonicalError(
                f"template landmarks {bad} are not strictly inside the {self.width}x{self.height} canonical image")
        self.landmarks = lm
        self._top_order = jaw_top_order(lm) if self.top_points == "sorted" else None
        self.control = control_points(lm, self.width, self.height, self._top_order)
        if len(np.unique(self.control.round(9), axis=0)) != N_CONTROL:
            raise CanonicalError("template control points are not distinct")
        dt = Delaunay(self.control)
        if len(dt.coplanar):
            raise CanonicalError(f"Delaunay left template points out: {sorted(int(i) + 1 for i in dt.coplanar[:, 0])}")
        tri = dt.simplices.astype(np.int64)
        area = signed_areas(self.control, tri)
        tri[area < 0] = tri[area < 0][:, [0, 2, 1]]  # every triangle counter-clockwise (area > 0)
        area = signed_areas(self.control, tri)
        if area.min() <= 1e-9:
            k = int(area.argmin())
            raise CanonicalError(f"degenerate template triangle {tuple(int(i) + 1 for i in tri[k])}")
        self.triangles = tri
        # Which triangle holds each canonical pixel centre, once for every warp.
        ys, xs = np.mgrid[0 : self.height, 0 : self.width]
        pix = np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float64)
        # The Delaunay object's simplices are re-oriented above but keep their order.
        idx = dt.find_simplex(pix, tol=1e-9)
        if (idx < 0).any():
            raise CanonicalError(f"{int((idx < 0).sum())} canonical pixels lie outside the triangulation")
        self.pixel_triangle = idx.astype(np.int64).reshape(self.height, self.width)
        cmat = np.concatenate([self.control[tri], np.ones((len(tri), 3, 1))], axis=2)  # rows [x y 1]
        self._cinv = np.linalg.inv(cmat)  # (T, 3, 3) with C^-1 C = I
        homog = np.column_stack([pix, np.ones(len(pix))])  # (HW, 3) rows [x y 1]
        # Barycentric coordinates b = C_t^-T applied to [x y 1]: p = sum_j b_j * vertex_j.
        bary = np.einsum("pij,pi->pj", self._cinv[idx], homog)
        # Per-vertex planes (H, W), float32: a face's grid is then six gathers and multiply-adds
        # (float32 source coordinates: 6e-5 px at 1024 px, far below cv2.remap's 1/32 px steps).
        shape = (self.height, self.width)
        self._bary_planes = tuple(np.ascontiguousarray(bary[:, j].reshape(shape), np.float32) for j in range(3))
        self._vertex_planes = tuple(np.ascontiguousarray(tri[idx, j].reshape(shape), np.intp) for j in range(3))
        self._scale_ref = _rms_radius(lm)

    # -- per face

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def source_control_points(self, landmarks: np.ndarray, src_shape: tuple[int, int]) -> np.ndarray:
        h, w = src_shape
        return control_points(landmarks, w, h, self._top_order)

    def check(self, landmarks: np.ndarray, src_shape: tuple[int, int]) -> TriangleCheck:
        """Raise :class:`WarpRejected` when the face would fold or collapse the warp."""
        lm = np.asarray(landmarks, dtype=np.float64)
        if lm.shape != (N_LANDMARKS, 2):
            raise WarpRejected("bad_landmarks", f"expected (68, 2) landmarks, got {lm.shape}")
        if not np.isfinite(lm).all():
            raise WarpRejected("non_finite_landmarks", "landmarks contain NaN or inf")
        h, w = src_shape
        outside = (lm[:, 0] < -0.5) | (lm[:, 0] > w - 0.5) | (lm[:, 1] < -0.5) | (lm[:, 1] > h - 0.5)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise WarpRejected(
                "landmarks_outside_image",
                f"{int(outside.sum())} landmark(s) outside the {w}x{h} image, e.g. point {point_name(i)} at "
                f"({lm[i, 0]:.1f}, {lm[i, 1]:.1f}); the image corners cannot enclose the face",
            )
        radius = _rms_radius(lm)
        if radius < 1e-6:
            raise WarpRejected("degenerate_landmarks", "all landmarks at one point")
        src = self.source_control_points(lm, src_shape)
        hts = signed_heights(src, self.triangles) * (self._scale_ref / radius)
        k = int(hts.argmin())
        tol = self.max_fold_px
        if hts[k] < -tol or (tol == 0 and hts[k] <= DEGENERATE_EPS):
            name = "(" + ", ".join(point_name(int(i)) for i in self.triangles[k]) + ")"
            if hts[k] < -DEGENERATE_EPS:
                raise WarpRejected(
                    "flipped_triangle",
                    f"triangle {name} is flipped and folds the warp by {-hts[k]:.2f} canonical px "
                    f"(tolerance canonical.max_fold_px={tol:g})",
                )
            raise WarpRejected(
                "degenerate_triangle",
                f"triangle {name} collapses to a line (tolerance canonical.max_fold_px={tol:g})",
            )
        folded = hts <= DEGENERATE_EPS
        return TriangleCheck(hts, int(folded.sum()), float(max(0.0, -hts.min())))

    def affines(self, src_control: np.ndarray) -> np.ndarray:
        """(T, 2, 3): per triangle, the affine taking canonical (x, y, 1) to source (x, y)."""
        s = src_control[self.triangles]  # (T, 3, 2) source vertices
        # C @ A^T = S with C rows [x y 1] of the canonical vertices  =>  A^T = C^-1 S.
        return np.transpose(self._cinv @ s, (0, 2, 1))

    def grid(self, landmarks: np.ndarray, src_shape: tuple[int, int]) -> WarpGrid:
        """The dense canonical -> source sampling grid of one face (after :meth:`check`).

        Pixel p of triangle t samples the source at ``A_t p = S_t (C_t^-1 p)`` where ``A_t`` is
        the triangle's affine (:meth:`affines`), ``S_t`` its source vertices and ``C_t`` its
        canonical vertices; ``C_t^-1 p`` (the pixel's barycentric coordinates) depends on the
        template only and is computed once, so a face costs gathers and a weighted sum
        (about 1 ms for 224 x 275; the test checks it against the explicit affines).
        """
        chk = self.check(landmarks, src_shape)
        src = self.source_control_points(landmarks, src_shape).astype(np.float32)
        sx, sy = src[:, 0], src[:, 1]
        (b0, b1, b2), (v0, v1, v2) = self._bary_planes, self._vertex_planes
        mx = b0 * sx[v0]
        mx += b1 * sx[v1]
        mx += b2 * sx[v2]
        my = b0 * sy[v0]
        my += b1 * sy[v1]
        my += b2 * sy[v2]
        return WarpGrid(mx, my, (int(src_shape[0]), int(src_shape[1])), chk.n_folded, chk.max_fold)

    def warp(self, image: np.ndarray, landmarks: np.ndarray, interpolation: str = "linear") -> np.ndarray:
        return self.grid(landmarks, np.asarray(image).shape[:2]).apply(image, interpolation)

    # -- helpers for masks and figures

    def point(self, number: int) -> np.ndarray:
        """Control point by its 1-based number (1-89) in canonical pixels."""
        if not 1 <= number <= N_CONTROL:
            raise KeyError(f"control point {number}: expected 1..{N_CONTROL}")
        return self.control[number - 1]

    def face_hull_mask(self) -> np.ndarray:
        """Canonical pixels inside the convex hull of the 68 template landmarks."""
        hull = cv2.convexHull(np.round(self.landmarks * 16).astype(np.int32))
        mask = np.zeros(self.shape, np.uint8)
        cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
        return mask.astype(bool)


def canonical_space(
    width: int = WIDTH, height: int = HEIGHT, face_box_height: int = FACE_BOX_HEIGHT,
    template: str = "dlib_mean", top_points: str = "sorted", max_fold_px: float = 3.0,
    landmarks: np.ndarray | None = None,
) -> CanonicalSpace:
    """Build the canonical space; ``landmarks`` (N, 68, 2) are required for ``procrustes``."""
    if not 0 < face_box_height <= height:
        raise CanonicalError(f"face_box_height {face_box_height} must be in (0, height={height}]")
    if template == "dlib_mean":
        lm = dlib_mean_template(width, face_box_height)
    elif template == "procrustes":
        if landmarks is None:
            raise CanonicalError("template 'procrustes' needs the landmarks of the prepared faces")
        lm = procrustes_template(landmarks, width, face_box_height)
    else:
        raise CanonicalError(f"template {template!r}: expected one of {TEMPLATE_SOURCES}")
    return CanonicalSpace(lm, width, height, template, top_points, max_fold_px)


def from_params(cparams, landmarks: np.ndarray | None = None) -> CanonicalSpace:
    """:func:`canonical_space` from a :class:`fer_xai.config.CanonicalParams`."""
    return canonical_space(
        cparams.width, cparams.height, cparams.face_box_height, cparams.template,
        cparams.top_points, cparams.max_fold_px, landmarks,
    )


def for_study(params) -> CanonicalSpace:
    """The canonical space of a study (:class:`fer_xai.config.Params`); the ``procrustes``
    template is the mean shape of every prepared face's landmarks (all folds alike)."""
    landmarks = None
    if params.canonical.template == "procrustes":
        from ..paths import resolve
        from ..prepared import load_prepared

        landmarks = load_prepared(resolve(params.prepare.out_dir)).landmarks()
        log.info("procrustes template from %d prepared faces", len(landmarks))
    return from_params(params.canonical, landmarks)
