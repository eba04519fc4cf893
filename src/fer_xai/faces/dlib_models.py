"""dlib's HOG face detector and 68-point shape predictor, located on disk, never downloaded.

The 68-point model (``shape_predictor_68_face_landmarks.dat``) was trained on iBUG 300-W,
whose terms exclude commercial use; see the README.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_NAME = "shape_predictor_68_face_landmarks.dat"
_DEBIAN_PATHS = (
    Path("/usr/share/dlib/shape_predictor_68_face_landmarks.dat"),
    Path("/usr/share/dlib-data/shape_predictor_68_face_landmarks.dat"),
)


class ModelNotFoundError(FileNotFoundError):
    pass


def predictor_path() -> Path:
    """Find the 68-point model: ``$FER_XAI_DLIB_PREDICTOR``, the face-recognition-models wheel,
    or Debian's libdlib-data. The wheel's ``__init__`` imports ``pkg_resources`` (gone from recent
    setuptools), so its folder is found with ``find_spec`` without importing it."""
    env = os.environ.get("FER_XAI_DLIB_PREDICTOR")
    candidates: list[Path] = [Path(env)] if env else []
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(Path(loc) / "models" / MODEL_NAME)
    candidates.extend(_DEBIAN_PATHS)
    for cand in candidates:
        if cand.is_file():
            return cand
    raise ModelNotFoundError(
        f"dlib 68-point model {MODEL_NAME} not found (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "). Install the project (it depends on face-recognition-models), or `apt-get install "
        "libdlib-data`, or set FER_XAI_DLIB_PREDICTOR to the file."
    )


@lru_cache(maxsize=1)
def detector():
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def predictor():
    import dlib

    return dlib.shape_predictor(str(predictor_path()))


def shape_to_array(shape) -> np.ndarray:
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float32)
