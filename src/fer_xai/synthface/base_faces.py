"""The real face photographs the generator warps, and their dlib landmarks.

Only photographs that ship inside installed packages are used (nothing is downloaded):
``skimage.data.astronaut()`` and matplotlib's ``grace_hopper.jpg``. Their 68 landmarks are
found with dlib once per process and cached, so the synthetic faces inherit real skin, eyes,
lips and shading, which is what makes dlib's own detector and predictor accept them.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..faces import dlib_models

log = logging.getLogger(__name__)

BASE_PHOTOS: tuple[str, ...] = ("skimage.data.astronaut", "matplotlib.sample_data.grace_hopper.jpg")


@dataclass(frozen=True)
class BasePhoto:
    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) float64, dlib's prediction in the photo's pixels


def dlib_landmarks(image: np.ndarray, upsample: int = 0) -> tuple[np.ndarray | None, int]:
    """Landmarks (68, 2) of the highest-scoring frontal face and the number of faces found.

    Uses the project's dlib models (:mod:`fer_xai.faces.dlib_models`): HOG detector + the
    68-point predictor shipped by ``face_recognition_models``.
    """
    import dlib

    img = np.ascontiguousarray(image)
    rects, scores, _ = dlib_models.detector().run(img, upsample, 0.0)
    if not rects:
        return None, 0
    r = rects[int(np.argmax(scores))]
    shape = dlib_models.predictor()(img, dlib.rectangle(r.left(), r.top(), r.right(), r.bottom()))
    return dlib_models.shape_to_array(shape).astype(np.float64), len(rects)


def _read_photos() -> list[tuple[str, np.ndarray]]:
    import matplotlib.cbook
    import skimage.data

    photos = [(BASE_PHOTOS[0], np.asarray(skimage.data.astronaut(), dtype=np.uint8))]
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        photos.append((BASE_PHOTOS[1], np.asarray(Image.open(fh).convert("RGB"), dtype=np.uint8)))
    return photos


# Landmarks handed to worker processes by the parent, so workers need not load dlib (0.5 s, 100 MB).
_KNOWN_LANDMARKS: dict[str, np.ndarray] = {}


def set_base_landmarks(landmarks: dict[str, np.ndarray]) -> None:
    """Use these landmarks for the base photos instead of running dlib (worker initialiser)."""
    _KNOWN_LANDMARKS.update({k: np.asarray(v, dtype=np.float64) for k, v in landmarks.items()})
    load_base_photos.cache_clear()


@functools.lru_cache(maxsize=1)
def load_base_photos() -> tuple[BasePhoto, ...]:
    """The bundled photographs with their dlib landmarks (computed once per process)."""
    out = []
    for name, image in _read_photos():
        pts = _KNOWN_LANDMARKS.get(name)
        if pts is None:
            pts, n = dlib_landmarks(image)
            if pts is None:
                raise RuntimeError(f"dlib found no face in the bundled photo {name}")
            log.debug(
                "base photo %s: %d face(s), IOD %.1f px",
                name,
                n,
                np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0)),
            )
        out.append(BasePhoto(name=name, image=image, landmarks=pts))
    return tuple(out)


def base_landmarks() -> dict[str, np.ndarray]:
    return {b.name: b.landmarks for b in load_base_photos()}
