"""LIME for images with the forward passes as the only real cost.

Same algorithm and numbers as ``lime.lime_image.LimeImageExplainer.explain_instance`` with
``hide_color`` set and ``feature_selection='none'`` (every superpixel is a feature, as with
lime's default ``num_features=100000``): cosine distance of each on/off row to the all-on row,
lime's exponential kernel (``kernel_width``), and one weighted ridge per explained class, fitted
by lime's own ``LimeBase``. What differs is only how the perturbed images are made and
classified (see :mod:`.perturb` and :mod:`.predictor`), and that the on/off matrix is seeded per
image so runs are reproducible (lime's ``random_seed`` seeds only its segmentation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import pairwise_distances

from ..config import ExplainParams, SlicParams
from .perturb import perturbation_matrix, perturbation_rng, perturbed_batches
from .segmentation import segment

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LimeSettings:
    num_samples: int = 1000
    hide_color: float = 0.0
    kernel_width: float = 0.25
    ridge_alpha: float = 1.0
    batch_size: int = 128
    seed: int = 11
    slic: SlicParams = field(default_factory=SlicParams)
    gpu_batch_memory_fraction: float = 0.0  # > 0: on a GPU the batch grows to this share of free memory

    @classmethod
    def from_params(cls, p: ExplainParams) -> LimeSettings:
        return cls(num_samples=p.num_samples, hide_color=p.hide_color, kernel_width=p.kernel_width,
                   ridge_alpha=p.ridge_alpha, batch_size=p.batch_size, seed=p.seed, slic=p.slic,
                   gpu_batch_memory_fraction=p.gpu_batch_memory_fraction)

    def for_device(self, predict: Predict) -> LimeSettings:
        """These settings with the forward batch grown to fill the GPU (at most ``num_samples``:
        one pass per image) when ``predict`` runs on one (see ``GraphPredictor.device_batch``)."""
        fits = getattr(predict, "device_batch", None)
        if fits is None or self.gpu_batch_memory_fraction <= 0:
            return self
        batch = fits(self.gpu_batch_memory_fraction)
        if batch is None or batch <= self.batch_size:
            return self
        return replace(self, batch_size=min(batch, self.num_samples))


@dataclass(frozen=True)
class Perturbation:
    """What several models explaining one image share: its superpixels and its on/off matrix."""

    segments: np.ndarray  # (H, W) int32, 0..n-1
    data: np.ndarray  # (num_samples, n) int64, row 0 all ones

    @property
    def n_features(self) -> int:
        return self.data.shape[1]


@dataclass(frozen=True)
class Explanation:
    image_id: str
    label: int  # the explained class
    segments: np.ndarray
    weights: np.ndarray  # (n,) ridge coefficient of each superpixel for ``label``
    intercept: float
    score: float  # weighted R^2 of the surrogate
    local_pred: float
    probs: np.ndarray  # the model's class probabilities on the unperturbed image

    def map(self) -> np.ndarray:
        """Float32 (H, W) explanation: each superpixel painted with its positive weight, else 0."""
        return np.maximum(self.weights, 0.0).astype(np.float32)[self.segments]

    def relevance(self) -> np.ndarray:
        """Float32 (H, W) signed relevance: each superpixel painted with its weight."""
        return np.asarray(self.weights, np.float32)[self.segments]


def make_perturbation(image: np.ndarray, image_id: str, settings: LimeSettings) -> Perturbation:
    segments = segment(image, settings.slic)
    n = int(segments.max()) + 1
    return Perturbation(
        segments, perturbation_matrix(n, settings.num_samples, perturbation_rng(settings.seed, image_id))
    )


def lime_kernel_base(kernel_width: float):
    """lime's own ``LimeBase`` with its image kernel ``sqrt(exp(-d^2 / w^2))``."""
    from lime.lime_image import LimeImageExplainer

    return LimeImageExplainer(kernel_width=kernel_width, feature_selection="none", verbose=False).base


def fit_surrogate(data: np.ndarray, probs: np.ndarray, label: int, settings: LimeSettings, base=None):
    """LIME's weighted ridge for one class: (weights per feature, intercept, R^2, local prediction)."""
    base = base or lime_kernel_base(settings.kernel_width)
    distances = pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    intercept, exp, score, local_pred = base.explain_instance_with_data(
        data,
        probs,
        distances,
        label,
        data.shape[1],
        feature_selection="none",
        model_regressor=Ridge(alpha=settings.ridge_alpha, fit_intercept=True),
    )
    weights = np.zeros(data.shape[1])
    for feat, w in exp:
        weights[feat] = w
    return weights, float(intercept), float(score), float(np.ravel(local_pred)[0])


def explain_image(
    predict: Predict,
    image: np.ndarray,
    image_id: str,
    settings: LimeSettings,
    label: int | None = None,
    perturbation: Perturbation | None = None,
    base=None,
) -> Explanation:
    """Explain ``label`` (default: the predicted class) for one (H, W) grayscale image in [0, 255]."""
    pert = perturbation or make_perturbation(image, image_id, settings)
    probs = np.concatenate(
        [
            np.asarray(predict(b))
            for b in perturbed_batches(image, pert.segments, pert.data, settings.hide_color, settings.batch_size)
        ]
    )
    if label is None:
        label = int(np.argmax(probs[0]))
    weights, intercept, score, local_pred = fit_surrogate(pert.data, probs, label, settings, base)
    return Explanation(image_id, int(label), pert.segments, weights, intercept, score, local_pred, probs[0].copy())


def explain_images(
    predict: Predict,
    images: np.ndarray,
    image_ids: Sequence[str],
    settings: LimeSettings,
    labels: Sequence[int] | None = None,
    perturbations: Sequence[Perturbation] | None = None,
    progress: str | None = None,
) -> list[Explanation]:
    """Explain many images with one model; pass ``perturbations`` to share them between models."""
    from tqdm.auto import tqdm

    base = lime_kernel_base(settings.kernel_width)
    settings = settings.for_device(predict)
    out = []
    for i in tqdm(range(len(images)), desc=progress or "LIME", disable=progress is None, unit="img"):
        out.append(
            explain_image(
                predict,
                images[i],
                str(image_ids[i]),
                settings,
                label=None if labels is None else int(labels[i]),
                perturbation=None if perturbations is None else perturbations[i],
                base=base,
            )
        )
    return out
