"""One image through the face preprocessing of ``params.prepare``: size check, detection or the
dataset's landmarks, alignment and crop. ``fer-xai prepare`` runs it on every dataset image and
``fer-xai explain`` on new images, so a model sees the same kind of face in both."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..images import ImageReadError, load_gray, read_gray
from .align import AlignedFace, CropGeometry, FaceError, align_face

if TYPE_CHECKING:
    from ..config import PrepareParams


def prepare_face(gray: np.ndarray, p: PrepareParams, dataset_landmarks: np.ndarray | None = None,
                 mask: np.ndarray | None = None, neutral: np.ndarray | None = None) -> AlignedFace:
    """One grayscale image through the preprocessing of ``params.prepare``: size check, detection
    or the dataset's landmarks, alignment and crop. Raises :class:`FaceError` with the reason."""
    if min(gray.shape) < p.min_image_px:
        raise FaceError("too_small", f"{gray.shape[1]}x{gray.shape[0]} px < {p.min_image_px}")
    return align_face(
        gray,
        CropGeometry(p.size, p.crop_width_iod, p.crop_top_iod),
        dataset_landmarks=dataset_landmarks,
        landmarks_source=p.landmarks_source,
        upsample=p.detector_upsample,
        min_face_px=p.min_face_px,
        multiple=p.multiple_faces,
        mask=mask,
        detect_max_side=p.detect_max_side,
        neutral=neutral,
    )


def prepare_image_file(path: str | os.PathLike, p: PrepareParams, dataset_landmarks: np.ndarray | None = None,
                       mask_path: str | os.PathLike | None = None,
                       neutral_path: str | os.PathLike | None = None) -> AlignedFace:
    """The face of one image file; raises :class:`ImageReadError` or :class:`FaceError`.

    Images larger than ``work_max_side`` are aligned from a reduced working image (the crop is far
    smaller still); dataset landmarks, masks and neutral twins are brought onto its pixel grid."""
    img = load_gray(path, max_pixels=p.max_image_pixels, max_side=p.work_max_side)
    mask = _read_mask(mask_path, p) if mask_path is not None else None
    neutral = None
    if neutral_path is not None:
        try:
            neutral = load_gray(neutral_path, max_pixels=p.max_image_pixels, max_side=p.work_max_side).pixels
        except ImageReadError as exc:
            raise FaceError("bad_neutral", f"neutral {exc}") from exc
    landmarks = _to_working(dataset_landmarks, img.scale)
    return prepare_face(img.pixels, p, dataset_landmarks=landmarks, mask=mask, neutral=neutral)


def _read_mask(path: str | os.PathLike, p: PrepareParams) -> np.ndarray:
    """The mask on the image's working grid (same reduction); its problems reject the image."""
    try:
        return read_gray(path, max_pixels=p.max_image_pixels, max_side=p.work_max_side)
    except ImageReadError as exc:
        raise FaceError("bad_mask", f"mask {exc}") from exc


def _to_working(landmarks: np.ndarray | None, scale: tuple[float, float]) -> np.ndarray | None:
    """Dataset landmarks (file pixels) on the reduced working image, pixel-centre convention."""
    if landmarks is None or scale == (1.0, 1.0):
        return landmarks
    return (np.asarray(landmarks, np.float64) + 0.5) * np.asarray(scale) - 0.5
