"""Reading and writing ``explanations.npz``: the LIME explanations of one (model, fold) or of new images.

``explanations.npz`` (compressed, no pickles) holds, for N explained images:
``ids``, ``classes`` (explained = predicted class), ``labels`` (true class, "" when unknown),
``correct`` (bool), ``maps`` (N, S, S) float32 positive superpixel weights, ``segments``
(N, S, S) int32, ``weights`` (N, max_segments) float32 NaN-padded signed ridge weights,
``intercept``/``score``/``local_pred`` (N,), ``probs`` (N, 6), ``landmarks`` (N, 68, 2) float32 in
map pixel coordinates, and scalars ``input_size``, ``model``, ``fold`` (0 for new images).

Other methods (:mod:`fer_xai.explain.methods`) write the same arrays plus the scalar ``method``
and ``signed_maps`` (N, S, S) float32 (``maps`` is its positive part); methods without
superpixels have all-zero ``segments`` and an (N, 0) ``weights``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..labels import EXPRESSIONS
from .lime_fast import Explanation

_ARRAYS = ("ids", "classes", "labels", "correct", "maps", "segments", "weights", "landmarks")


@dataclass(frozen=True)
class ExplanationSet:
    ids: np.ndarray
    classes: np.ndarray
    labels: np.ndarray
    correct: np.ndarray
    maps: np.ndarray
    segments: np.ndarray
    weights: np.ndarray
    landmarks: np.ndarray
    input_size: int
    model: str
    fold: int
    extra: dict

    def __len__(self) -> int:
        return len(self.ids)


def save_explanations(
    path: str | os.PathLike,
    explanations: Sequence[Explanation],
    landmarks: np.ndarray,
    true_labels: Sequence[str],
    model: str,
    fold: int,
    input_size: int | None = None,
    method: str | None = None,
) -> Path:
    n = len(explanations)
    size = explanations[0].segments.shape[0] if n else int(input_size or 0)
    max_seg = max((len(e.weights) for e in explanations), default=0)
    weights = np.full((n, max_seg), np.nan, np.float32)
    for i, e in enumerate(explanations):
        weights[i, :len(e.weights)] = e.weights
    classes = np.array([EXPRESSIONS[e.label] for e in explanations], dtype=str).reshape(n)
    labels = np.array([str(x) for x in true_labels], dtype=str).reshape(n)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    by_method = {} if method is None else {
        "method": np.array(method),
        "signed_maps": np.stack([e.relevance() for e in explanations]) if n else np.zeros((0, size, size), np.float32),
    }
    np.savez_compressed(
        path,
        **by_method,
        ids=np.array([e.image_id for e in explanations], dtype=str).reshape(n),
        classes=classes,
        labels=labels,
        correct=classes == labels,
        maps=np.stack([e.map() for e in explanations]) if n else np.zeros((0, size, size), np.float32),
        segments=np.stack([e.segments for e in explanations]).astype(np.int32) if n
        else np.zeros((0, size, size), np.int32),
        weights=weights,
        intercept=np.array([e.intercept for e in explanations], np.float64),
        score=np.array([e.score for e in explanations], np.float64),
        local_pred=np.array([e.local_pred for e in explanations], np.float64),
        probs=np.stack([e.probs for e in explanations]).astype(np.float32) if n
        else np.zeros((0, len(EXPRESSIONS)), np.float32),
        landmarks=np.asarray(landmarks, np.float32).reshape(n, 68, 2),
        input_size=np.int32(size),
        model=np.array(model),
        fold=np.int32(fold),
    )
    return path


def load_explanations(path: str | os.PathLike) -> ExplanationSet:
    """Read and check one ``explanations.npz``; problems are errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no explanations; run `fer-xai explain` for this model and fold")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # zip/format errors come in many types
        raise ValueError(f"{path}: not a readable explanations file ({exc})") from exc
    missing = [k for k in (*_ARRAYS, "input_size", "model", "fold") if k not in data]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}")
    n = len(data["ids"])
    size = int(data["input_size"])
    if data["maps"].shape != (n, size, size) or data["landmarks"].shape != (n, 68, 2):
        raise ValueError(f"{path}: maps {data['maps'].shape} / landmarks {data['landmarks'].shape} "
                         f"do not match {n} images of {size} px")
    extra = {k: v for k, v in data.items() if k not in _ARRAYS and k not in ("input_size", "model", "fold")}
    return ExplanationSet(**{k: data[k] for k in _ARRAYS}, input_size=size, model=str(data["model"]),
                          fold=int(data["fold"]), extra=extra)
