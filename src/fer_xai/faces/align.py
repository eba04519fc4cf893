"""Face detection, 68 landmarks, eye-line alignment and crop (paper section 3.2).

One similarity transform (rotation about the eye midpoint, scale to a fixed inter-ocular
distance, translation) maps the source image straight to the aligned crop, so landmarks and
label-like maps (the synthetic AU-region masks) are carried through exactly the same matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import dlib_models

LEFT_EYE = slice(36, 42)  # subject's right eye, image left
RIGHT_EYE = slice(42, 48)


class FaceError(ValueError):
    """No usable face; ``reason`` is short and machine-sortable (goes to rejected.csv)."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(reason + (f": {detail}" if detail else ""))


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # left, top, right, bottom
    score: float
    n_faces: int


@dataclass(frozen=True)
class CropGeometry:
    size: int
    width_iod: float  # crop width in inter-ocular distances
    top_iod: float  # eye line sits this many IODs below the crop's top edge


def detect_face(gray: np.ndarray, upsample: int, min_face_px: int, multiple: str,
                max_side: int | None = None) -> Detection:
    """The dlib HOG (frontal) detector; zero or several faces are errors unless told otherwise.

    An image longer than ``max_side`` is searched on a copy reduced to it (HOG cost grows with
    the pixel count, and a large face gains nothing from it); the box is mapped back to ``gray``.
    """
    small = gray
    if max_side is not None and max(gray.shape) > max_side:
        f = max_side / max(gray.shape)
        small = cv2.resize(gray, (max(1, round(gray.shape[1] * f)), max(1, round(gray.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
    rects, scores, _ = dlib_models.detector().run(small, upsample, 0.0)
    if len(rects) == 0:
        raise FaceError("no_face", "dlib HOG detector found no face")
    order = sorted(range(len(rects)), key=lambda i: -rects[i].area())
    if len(rects) > 1 and multiple == "reject":
        raise FaceError("multiple_faces", f"{len(rects)} faces found")
    r = rects[order[0]]
    kx, ky = gray.shape[1] / small.shape[1], gray.shape[0] / small.shape[0]
    # Pixel-centre convention, as cv2.resize: x_full = (x_small + 0.5) * k - 0.5.
    box = (round((r.left() + 0.5) * kx - 0.5), round((r.top() + 0.5) * ky - 0.5),
           round((r.right() + 0.5) * kx - 0.5), round((r.bottom() + 0.5) * ky - 0.5))
    if min(box[2] - box[0], box[3] - box[1]) < min_face_px:
        raise FaceError("face_too_small", f"face box {box[2] - box[0]}x{box[3] - box[1]} px < {min_face_px}")
    return Detection(box=box, score=float(scores[order[0]]), n_faces=len(rects))


def predict_landmarks(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    import dlib

    shape = dlib_models.predictor()(gray, dlib.rectangle(*box))
    return dlib_models.shape_to_array(shape)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return landmarks[LEFT_EYE].mean(axis=0), landmarks[RIGHT_EYE].mean(axis=0)


def inter_ocular(landmarks: np.ndarray) -> float:
    a, b = eye_centres(landmarks)
    return float(np.linalg.norm(b - a))


def alignment_matrix(landmarks: np.ndarray, geom: CropGeometry) -> np.ndarray:
    """2x3 matrix taking source pixels to the aligned crop: eye line horizontal, fixed IOD."""
    left, right = eye_centres(landmarks)
    dx, dy = right - left
    iod = float(np.hypot(dx, dy))
    if iod < 1e-3:
        raise FaceError("bad_landmarks", "eye centres coincide")
    angle = np.arctan2(dy, dx)
    scale = geom.size / (geom.width_iod * iod)
    c, s = np.cos(-angle) * scale, np.sin(-angle) * scale
    mid = (left + right) / 2.0
    rot = np.array([[c, -s], [s, c]])
    target = np.array([geom.size / 2.0, geom.top_iod * geom.size / geom.width_iod])
    t = target - rot @ mid
    return np.hstack([rot, t[:, None]]).astype(np.float64)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def warp_image(img: np.ndarray, matrix: np.ndarray, size: int, label_like: bool = False) -> np.ndarray:
    """Apply the crop transform; nearest sampling keeps masks binary, area pre-blur avoids aliasing."""
    if label_like:
        return cv2.warpAffine(img, matrix, (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:  # strong downscale: low-pass first, like INTER_AREA would
        sigma = 0.5 / scale
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return cv2.warpAffine(img, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class AlignedFace:
    image: np.ndarray  # uint8 (size, size)
    landmarks: np.ndarray  # (68, 2) float32, crop coordinates
    matrix: np.ndarray  # 2x3 source -> crop
    source_landmarks: np.ndarray  # (68, 2) in the source image
    landmarks_source: str  # "dlib" or "dataset"
    det_score: float  # NaN when no detector ran
    mask: np.ndarray | None = None
    neutral: np.ndarray | None = None  # the neutral twin through the same matrix: pixels correspond
    box: tuple[int, int, int, int] | None = None  # the detector's (left, top, right, bottom); None: dataset landmarks


def align_face(
    gray: np.ndarray,
    geom: CropGeometry,
    *,
    dataset_landmarks: np.ndarray | None = None,
    landmarks_source: str = "dlib",
    upsample: int = 0,
    min_face_px: int = 48,
    multiple: str = "reject",
    mask: np.ndarray | None = None,
    detect_max_side: int | None = None,
    neutral: np.ndarray | None = None,
) -> AlignedFace:
    """Detect (unless the dataset's landmarks are used), landmark, align and crop one face.

    With ``detect_max_side`` the detector sees a reduced copy (:func:`detect_face`), but the
    landmarks are predicted on ``gray`` itself, in the mapped-back box: their precision is that
    of the full image, and alignment and crop use it too."""
    use_dataset = landmarks_source == "dataset" or (
        landmarks_source == "auto" and dataset_landmarks is not None
    )
    if use_dataset:
        if dataset_landmarks is None:
            raise FaceError("no_landmarks", "landmarks_source=dataset but the dataset supplies none")
        lm = np.asarray(dataset_landmarks, dtype=np.float32)
        if lm.shape != (68, 2) or not np.isfinite(lm).all():
            raise FaceError("bad_landmarks", f"dataset landmarks have shape {lm.shape}")
        score, source, box = float("nan"), "dataset", None
    else:
        det = detect_face(gray, upsample, min_face_px, multiple, max_side=detect_max_side)
        lm = predict_landmarks(gray, det.box)
        score, source, box = det.score, "dlib", det.box
    matrix = alignment_matrix(lm, geom)
    aligned = warp_image(gray, matrix, geom.size)
    warped_mask = None
    if mask is not None:
        if mask.shape[:2] != gray.shape[:2]:
            raise FaceError("bad_mask", f"mask shape {mask.shape[:2]} != image shape {gray.shape[:2]}")
        warped_mask = warp_image(mask, matrix, geom.size, label_like=True)
    warped_neutral = None
    if neutral is not None:
        # The face's own matrix, not the neutral's landmarks: the twin's eyes sit elsewhere when
        # AU5/6/7 move them, and a crop-to-crop pixel correspondence is the point.
        if neutral.shape[:2] != gray.shape[:2]:
            raise FaceError("bad_neutral", f"neutral shape {neutral.shape[:2]} != image shape {gray.shape[:2]}")
        warped_neutral = warp_image(neutral, matrix, geom.size)
    return AlignedFace(
        image=aligned,
        landmarks=transform_points(matrix, lm),
        matrix=matrix,
        source_landmarks=lm,
        landmarks_source=source,
        det_score=score,
        mask=warped_mask,
        neutral=warped_neutral,
        box=box,
    )
