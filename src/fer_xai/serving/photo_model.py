"""An MLflow pyfunc model that reads photographs: ``mlflow models serve -m models:/fer-<model>-photo@fold<k>``.

Request: a DataFrame with one string column ``image``, each value a base64-encoded image file
(PNG, JPEG, or any format ``fer-xai prepare`` reads; line breaks and a ``data:image/...;base64,``
prefix are allowed). Optional param ``explain``: ``"none"`` (default), ``"lime"`` or any other
method of the training's ``explain.methods`` (``gradcam``, ``integrated_gradients``, ...).

Inside, each photo goes through the face preprocessing of the training's ``params.prepare``
(:func:`fer_xai.images.load_gray`, then :func:`fer_xai.faces.preprocess.prepare_face`: dlib HOG
detection, 68 landmarks, eye-line alignment, crop), is resized to the network's input like the
training's faces, and is classified by the fold's Keras model (bundled as the ``keras_model``
artifact and loaded in Keras safe mode, as :func:`fer_xai.registry.load_model_uri` does).

Answer: one row per photo, in order, with the columns of :data:`OUTPUT_COLUMNS`: ``status``
(``ok`` or ``rejected``), ``reason`` and ``detail`` (why a photo has no usable face:
``no_face``, ``multiple_faces``, ``face_too_small``, ``too_small``, ...), ``expression`` (the
argmax class) and its ``confidence``, ``p_<expression>`` for the six classes of
:data:`fer_xai.labels.EXPRESSIONS`, the detector's face box ``box_left/top/right/bottom`` (pixels
of the upright photo, EXIF orientation applied, inclusive, clipped to the photo) and the photo's
``image_width/height``; with ``explain=<method>``, ``explanation``: that method's map of the
predicted class on the network's input grid (``input_size`` rows of ``input_size`` non-negative
values; the training's ``params.explain`` settings). Values a rejected row lacks are null.

A malformed request (no ``image`` column, a value that is not base64, bytes that are not an
image, an unknown ``explain``) raises an ``MlflowException`` with ``INVALID_PARAMETER_VALUE``:
the scoring server answers 400 with the message.

The 68-point dlib model is not bundled (about 100 MB per fold): it is found on the serving
machine as ``fer-xai prepare`` finds it (:func:`fer_xai.faces.dlib_models.predictor_path`), and
loading fails unless its SHA-256 is the one the training used (recorded in ``model_config``).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
import warnings
from dataclasses import dataclass, fields
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from ..config import Params, PrepareParams, SlicParams
from ..errors import FerXaiError
from ..labels import EXPRESSIONS
from .photo_input import IMAGE_COLUMN, PhotoInputError, decode_images

log = logging.getLogger(__name__)

PHOTO_ARTIFACT = "photo_model"  # the logged model's name in the training run
KERAS_ARTIFACT = "keras_model"
EXPLAIN_PARAM, EXPLAIN_METHODS = "explain", ("none", "lime")  # always available; more from model_config
PROB_COLUMNS = [f"p_{e}" for e in EXPRESSIONS]
BOX_COLUMNS = ["box_left", "box_top", "box_right", "box_bottom"]
OUTPUT_COLUMNS = ["status", "reason", "detail", "expression", "confidence", *PROB_COLUMNS, *BOX_COLUMNS,
                  "image_width", "image_height", "explanation"]


def photo_signature():
    """Declared, not inferred: an input example would make MLflow load and run the model at log time."""
    from mlflow.models import ModelSignature
    from mlflow.types import DataType
    from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

    def col(kind, name):
        return ColSpec(kind, name, required=name in ("status", "reason", "detail"))

    outputs = [col(DataType.string, n) for n in ("status", "reason", "detail", "expression")]
    outputs += [col(DataType.double, n) for n in ("confidence", *PROB_COLUMNS)]
    outputs += [col(DataType.long, n) for n in (*BOX_COLUMNS, "image_width", "image_height")]
    outputs.append(col(Array(Array(DataType.double)), "explanation"))
    return ModelSignature(inputs=Schema([ColSpec(DataType.string, IMAGE_COLUMN)]), outputs=Schema(outputs),
                          params=ParamSchema([ParamSpec(EXPLAIN_PARAM, DataType.string, "none")]))


@lru_cache(maxsize=4)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def landmark_model_id() -> dict[str, Any]:
    """Name, size and SHA-256 of the 68-point model this machine uses (hashed once per file version)."""
    from ..faces.dlib_models import predictor_path

    path = predictor_path()
    st = path.stat()
    return {"file": path.name, "bytes": st.st_size, "sha256": _sha256(str(path), st.st_size, st.st_mtime_ns)}


def _lime_config(params: Params) -> dict[str, Any]:
    from ..explain.lime_fast import LimeSettings

    s = LimeSettings.from_params(params.explain)
    return {**{f.name: getattr(s, f.name) for f in fields(s) if f.name != "slic"}, "slic": s.slic.model_dump()}


def photo_config(params: Params, model_id: str, fold: int) -> dict[str, Any]:
    """The ``model_config`` of a photo model: what it needs besides the Keras file, all from the training."""
    return {"model": model_id, "fold": fold, "classes": list(EXPRESSIONS),
            "prepare": params.prepare.model_dump(mode="json"), "lime": _lime_config(params),
            "explain": params.explain.model_dump(mode="json"), "landmark_model": landmark_model_id()}


def log_photo_model(keras_file: Path, params: Params, model_id: str, fold: int, pip_requirements: list[str]):
    """Log the photo model of one fold into the active run; returns MLflow's ``ModelInfo``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
        return mlflow.pyfunc.log_model(
            name=PHOTO_ARTIFACT, python_model=PhotoModel(), artifacts={KERAS_ARTIFACT: str(keras_file)},
            signature=photo_signature(), model_config=photo_config(params, model_id, fold),
            pip_requirements=pip_requirements)


def _bad_request(message: str):
    from mlflow.exceptions import MlflowException

    return MlflowException.invalid_parameter_value(message)


def explain_method(params: dict | None, available=EXPLAIN_METHODS) -> str:
    method = str((params or {}).get(EXPLAIN_PARAM) or "none").lower()
    if method not in available:
        raise PhotoInputError(f"param {EXPLAIN_PARAM}={method!r}: expected one of {', '.join(available)}")
    return method


@dataclass
class PhotoClassifier:
    """Photos (file bytes) to the answer's rows, with a Keras model behind ``predict``."""

    predict: Any  # (N, S, S, 1) float32 gray faces in [0, 255] -> (N, 6) probabilities
    input_size: int
    prepare: PrepareParams
    lime: dict[str, Any]
    explain: dict[str, Any] | None = None  # the training's explain section (other methods); None: LIME only

    @cached_property
    def explain_params(self):
        """The training's explain section, validated once (None for a model logged without it)."""
        from ..config import ExplainParams

        return None if self.explain is None else ExplainParams.model_validate(self.explain)

    @cached_property
    def methods(self) -> tuple[str, ...]:
        """What the ``explain`` param accepts: none, the paper's LIME, and the training's other methods."""
        if self.explain_params is None:
            return EXPLAIN_METHODS
        from ..explain.methods import method_names

        return ("none", *method_names(self.explain_params))

    def __call__(self, blobs: list[bytes], method: str = "none") -> pd.DataFrame:
        images = _read_images(blobs, self.prepare)
        rows, faces = [], []
        for img in images:
            row, face = self._face(img)
            rows.append(row)
            if face is not None:
                faces.append(face)
        ok = [r for r in rows if r["status"] == "ok"]
        if faces:
            batch = np.stack(faces).astype(np.float32)
            probs = np.asarray(self.predict(batch[..., None]), dtype=np.float64)
            maps = self._explain(batch, probs, blobs, rows, method) if method != "none" else [None] * len(ok)
            for row, p, m in zip(ok, probs, maps, strict=True):
                k = int(np.argmax(p))
                row.update({"expression": EXPRESSIONS[k], "confidence": float(p[k]),
                            **{c: float(v) for c, v in zip(PROB_COLUMNS, p, strict=True)},
                            "explanation": None if m is None else np.round(m, 6).tolist()})
        return pd.DataFrame(rows, columns=OUTPUT_COLUMNS, dtype=object)  # object: nulls stay null in JSON

    def _face(self, img) -> tuple[dict, np.ndarray | None]:
        from ..faces.align import FaceError
        from ..faces.preprocess import prepare_face
        from ..prepared import resize_face

        gray, scale, (width, height) = img
        row: dict[str, Any] = dict.fromkeys(OUTPUT_COLUMNS)
        row.update({"image_width": width, "image_height": height})
        try:
            face = prepare_face(gray, self.prepare)
        except FaceError as exc:
            row.update({"status": "rejected", "reason": exc.reason, "detail": exc.detail})
            return row, None
        row.update({"status": "ok", "reason": "", "detail": "", **_box_on_photo(face.box, scale, width, height)})
        return row, resize_face(face.image, self.input_size)

    def _explain(self, faces: np.ndarray, probs: np.ndarray, blobs: list[bytes], rows: list[dict],
                 method: str = "lime") -> list:
        from ..explain.lime_fast import LimeSettings, explain_images

        # Seeded by the photo's bytes: the same photo gets the same map wherever it sits in a request.
        ids = [hashlib.sha256(b).hexdigest()[:16] for b, r in zip(blobs, rows, strict=True) if r["status"] == "ok"]
        classes = probs.argmax(axis=1)
        if method != "lime":
            from ..explain.methods import get_explainer

            ep = self.explain_params
            return list(get_explainer(method, ep).explain(self.predict, faces, classes, seed=ep.seed,
                                                          image_ids=ids).positive_maps())
        # Only the settings this version knows: a model logged by another version still loads.
        known = {f.name for f in fields(LimeSettings)}
        cfg = {k: v for k, v in self.lime.items() if k in known}
        settings = LimeSettings(**{**cfg, "slic": SlicParams(**cfg.get("slic", {}))})
        expl = explain_images(self.predict, faces, ids, settings, labels=classes.tolist())
        return [e.map() for e in expl]


def _read_images(blobs: list[bytes], p: PrepareParams) -> list[tuple[np.ndarray, tuple[float, float], tuple]]:
    """(working gray image, file-to-working scale, upright file size) per photo, read as prepare reads
    files; any unreadable one makes the request malformed."""
    from ..images import ImageReadError, load_gray

    out, bad = [], []
    with tempfile.TemporaryDirectory(prefix="fer-xai-photo-") as tmp:
        for row, blob in enumerate(blobs):
            path = Path(tmp) / f"row{row}"
            path.write_bytes(blob)
            try:
                img = load_gray(path, max_pixels=p.max_image_pixels, max_side=p.work_max_side)
            except ImageReadError as exc:
                bad.append(f"row {row}: {exc.reason}" + (f" ({exc.detail})" if exc.detail else ""))
                continue
            h, w = img.pixels.shape
            size = (round(w / img.scale[0]), round(h / img.scale[1]))
            out.append((img.pixels, img.scale, size))
    if bad:
        raise PhotoInputError(f"column {IMAGE_COLUMN!r}: {len(bad)} of {len(blobs)} values are not readable images: "
                              + "; ".join(bad[:5]) + ("; ..." if len(bad) > 5 else ""))
    return out


def _box_on_photo(box, scale: tuple[float, float], width: int, height: int) -> dict[str, int]:
    """The detector's box (working-image pixels) on the upright photo's grid, clipped to it."""
    (left, top, right, bottom), (sx, sy) = box, scale
    x = np.clip(np.rint((np.array([left, right]) + 0.5) / sx - 0.5), 0, width - 1).astype(int)
    y = np.clip(np.rint((np.array([top, bottom]) + 0.5) / sy - 0.5), 0, height - 1).astype(int)
    return {"box_left": int(x[0]), "box_top": int(y[0]), "box_right": int(x[1]), "box_bottom": int(y[1])}


class PhotoModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper: loads the Keras artifact and checks the landmark model, then maps
    request errors to ``INVALID_PARAMETER_VALUE`` (HTTP 400).

    ``predict`` has no type hints on purpose (MLflow warns): from hints MLflow would infer the
    signature and accept only ``{"inputs": ...}`` requests; :func:`photo_signature` declares it."""

    def load_context(self, context) -> None:
        from ..explain.predictor import GraphPredictor
        from ..models.zoo import load_model

        cfg = context.model_config
        found, trained = landmark_model_id(), cfg["landmark_model"]
        if found["sha256"] != trained["sha256"]:
            from ..faces.dlib_models import predictor_path

            raise FerXaiError(
                f"the 68-point landmark model {predictor_path()} (sha256 {found['sha256'][:12]}...) is not the one "
                f"this model was trained with ({trained['file']}, sha256 {trained['sha256'][:12]}...): faces would "
                "be aligned differently. Point FER_XAI_DLIB_PREDICTOR at that file.")
        model = load_model(context.artifacts[KERAS_ARTIFACT], safe_mode=True, compile=False)
        predictor = GraphPredictor(model)
        # Forced to dlib: a photo ships no dataset landmarks.
        prepare = PrepareParams(**{**cfg["prepare"], "landmarks_source": "dlib"})
        self._classifier = PhotoClassifier(predictor, predictor.input_size, prepare, cfg["lime"], cfg.get("explain"))
        # The scoring server runs requests in threads; dlib's detector and predictor are shared.
        self._lock = threading.Lock()

    def predict(self, context, model_input, params=None):
        try:
            blobs, method = decode_images(model_input), explain_method(params, self._classifier.methods)
            with self._lock:
                return self._classifier(blobs, method)
        except PhotoInputError as exc:
            raise _bad_request(str(exc)) from exc
