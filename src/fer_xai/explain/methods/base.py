"""What every explanation method returns, and the small helpers they share.

An explainer turns N grayscale faces (the models' input range, [0, 255]) and the class to
explain for each into one relevance map per face, at the model's input size. Positive values
are evidence *for* the explained class (LIME: the superpixel's ridge weight; Grad-CAM: the
ReLU'd class activation; Integrated Gradients: the attribution), so that ``np.maximum(map, 0)``
is what :mod:`fer_xai.explain.store` saves as ``maps`` and the heatmaps average.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..lime_fast import Explanation

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MapExplanation(Explanation):
    """An explanation by a pixel map (no superpixels): ``map()`` is its positive part."""

    signed: np.ndarray | None = None

    def map(self) -> np.ndarray:
        return np.maximum(self.signed, 0.0).astype(np.float32)

    def relevance(self) -> np.ndarray:
        return np.asarray(self.signed, np.float32)


@dataclass(frozen=True)
class MethodResult:
    """The explanations of N images by one method.

    ``maps``: (N, H, W) float32 signed relevance for the explained class (positive = evidence for
    it); ``probs``: (N, 6) float32, the model's probabilities on the unperturbed images;
    ``segments``: (N, H, W) int32 superpixels when the method works on superpixels, else None;
    ``weights``: (N, max_segments) float32 NaN-padded per-superpixel weights, else None;
    ``extra``: further per-image (N,) arrays the method wants saved (LIME: intercept, score,
    local_pred).
    """

    method: str
    maps: np.ndarray
    probs: np.ndarray
    classes: np.ndarray  # (N,) int, the explained class of each image
    segments: np.ndarray | None = None
    weights: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.maps)

    def positive_maps(self) -> np.ndarray:
        """(N, H, W) float32: the evidence for the class only, what ``explanations.npz`` stores as ``maps``."""
        return np.maximum(self.maps, 0.0).astype(np.float32)


@runtime_checkable
class Explainer(Protocol):
    """One configured explanation method (see :func:`fer_xai.explain.methods.get_explainer`)."""

    name: str

    def explain(self, model, images: np.ndarray, classes: np.ndarray, seed: int,
                image_ids=None, progress: str | None = None) -> MethodResult:
        """Explain ``classes[i]`` for ``images[i]`` ((N, H, W) float in [0, 255]) with ``model``.

        ``model``: a Keras model, or (methods that need no gradients only) a batch-probabilities
        callable such as :class:`~fer_xai.explain.predictor.GraphPredictor`. ``seed`` seeds every
        random choice; ``image_ids`` (default ``"0".."N-1"``) let seeded methods draw per image, so
        an image gets the same perturbations whichever other images are explained with it.
        """
        ...


def as_images(images: np.ndarray) -> np.ndarray:
    """(N, H, W) float32 from (N, H, W) or (N, H, W, 1); anything else is a ValueError."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W) grayscale images, got shape {np.shape(images)}")
    return x


def as_classes(classes, n: int) -> np.ndarray:
    c = np.asarray(classes, dtype=np.int64).reshape(-1)
    if len(c) != n:
        raise ValueError(f"{len(c)} classes for {n} images")
    return c


def default_ids(image_ids, n: int) -> list[str]:
    ids = [str(i) for i in range(n)] if image_ids is None else [str(i) for i in image_ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} image ids for {n} images")
    return ids


def keras_model(model):
    """The Keras model behind ``model`` (a model, or a :class:`GraphPredictor`); gradient methods need it."""
    inner = getattr(model, "model", model)
    if not (hasattr(inner, "input_shape") and hasattr(inner, "layers")):
        raise TypeError(f"this method needs a Keras model (gradients or layers), got {type(model).__name__}")
    return inner


def predictor(model) -> Predict:
    from ..predictor import GraphPredictor, as_predictor

    return model if isinstance(model, GraphPredictor) else as_predictor(model)


def channels(model) -> int:
    inner = getattr(model, "model", model)
    shape = getattr(inner, "input_shape", None)
    return int(shape[-1]) if shape is not None else 1


def equal_batches(n: int, batch_size: int) -> Iterator[np.ndarray]:
    """Index batches of at most ``batch_size``, all (nearly) equal: a short tail costs a full call."""
    if n == 0:
        return
    yield from np.array_split(np.arange(n), -(-n // batch_size))


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    """(N, H, W) Gaussian blur of each image (sigma in pixels of the model's input)."""
    import cv2

    return np.stack([cv2.GaussianBlur(im, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma),
                                      borderType=cv2.BORDER_REFLECT) for im in as_images(images)])


def as_explanations(result: MethodResult, image_ids) -> list:
    """The result as :class:`~fer_xai.explain.lime_fast.Explanation` objects, what the explain stage
    and :func:`~fer_xai.explain.store.save_explanations` handle: superpixel methods keep their
    segments and weights, the others carry their pixel map (``segments`` all 0, no weights)."""
    ids = default_ids(image_ids, len(result))
    out = []
    for i in range(len(result)):
        label, probs = int(result.classes[i]), np.asarray(result.probs[i])
        stat = {k: float(result.extra[k][i]) if k in result.extra else float("nan")
                for k in ("intercept", "score", "local_pred")}
        if result.segments is not None and result.weights is not None:
            w = np.asarray(result.weights[i], np.float64)
            out.append(Explanation(ids[i], label, result.segments[i], w[~np.isnan(w)], stat["intercept"],
                                   stat["score"], stat["local_pred"], probs))
        else:
            out.append(MapExplanation(ids[i], label, np.zeros(result.maps[i].shape, np.int32), np.zeros(0),
                                      stat["intercept"], stat["score"], stat["local_pred"], probs,
                                      signed=np.asarray(result.maps[i], np.float32)))
    return out
