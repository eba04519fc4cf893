"""LIME (Ribeiro et al. 2016) as the paper runs it, and its variants with another fill or segmentation.

``fill="color"`` is :mod:`fer_xai.explain.lime_fast` itself, so ``lime`` gives the paper's
numbers bit for bit; ``mean`` hides a superpixel behind its own mean gray value and ``blur``
behind the blurred face, fills that stay close to the data (a black patch is far off it).
"""

from __future__ import annotations

import numpy as np

from ...config import LimeMethodParams
from ..lime_fast import LimeSettings, explain_images, fit_surrogate, lime_kernel_base, make_perturbation
from ..perturb import perturbed_batches
from .base import MethodResult, as_classes, as_images, blurred, default_ids, predictor


def fill_image(image: np.ndarray, segments: np.ndarray, fill: str, hide_color: float, blur_sigma: float):
    """What a hidden superpixel shows: a constant, the superpixel's mean, or the blurred image."""
    if fill == "color":
        return float(hide_color)
    if fill == "mean":
        flat = segments.ravel()
        sums = np.bincount(flat, weights=image.ravel().astype(np.float64))
        return (sums / np.maximum(np.bincount(flat), 1))[segments].astype(np.float32)
    if fill == "blur":
        return blurred(image[None], blur_sigma)[0]
    raise ValueError(f"unknown fill {fill!r}")


def pad_weights(weights: list[np.ndarray]) -> np.ndarray:
    out = np.full((len(weights), max((len(w) for w in weights), default=0)), np.nan, np.float32)
    for i, w in enumerate(weights):
        out[i, :len(w)] = w
    return out


class LimeExplainer:
    def __init__(self, name: str, settings: LimeMethodParams, batch_size: int):
        self.name, self.settings, self.batch_size = name, settings, int(batch_size)

    def lime_settings(self, seed: int) -> LimeSettings:
        s = self.settings
        return LimeSettings(num_samples=s.num_samples, hide_color=s.hide_color, kernel_width=s.kernel_width,
                            ridge_alpha=s.ridge_alpha, batch_size=self.batch_size, seed=int(seed), slic=s.slic)

    def explain(self, model, images, classes, seed: int, image_ids=None, progress: str | None = None) -> MethodResult:
        x = as_images(images)
        labels = as_classes(classes, len(x))
        ids = default_ids(image_ids, len(x))
        predict = predictor(model)
        settings = self.lime_settings(seed)
        if self.settings.fill == "color":  # the paper's LIME, exactly lime_fast
            expl = explain_images(predict, x, ids, settings, labels=labels.tolist(), progress=progress)
        else:
            expl = self._explain_filled(predict, x, ids, labels, settings, progress)
        segments = np.stack([e.segments for e in expl]).astype(np.int32) if expl else np.zeros(x.shape, np.int32)
        weights = [np.asarray(e.weights) for e in expl]
        maps = np.stack([w.astype(np.float32)[e.segments] for w, e in zip(weights, expl)]) if expl \
            else np.zeros(x.shape, np.float32)
        return MethodResult(
            self.name, maps, np.stack([e.probs for e in expl]).astype(np.float32) if expl else np.zeros((0, 6)),
            labels, segments=segments, weights=pad_weights(weights),
            extra={"intercept": np.array([e.intercept for e in expl], np.float64),
                   "score": np.array([e.score for e in expl], np.float64),
                   "local_pred": np.array([e.local_pred for e in expl], np.float64)})

    def _explain_filled(self, predict, x, ids, labels, settings: LimeSettings, progress):
        from tqdm.auto import tqdm

        from ..lime_fast import Explanation

        s, base, out = self.settings, lime_kernel_base(settings.kernel_width), []
        for i in tqdm(range(len(x)), desc=progress or self.name, disable=progress is None, unit="img"):
            pert = make_perturbation(x[i], ids[i], settings)
            fill = fill_image(x[i], pert.segments, s.fill, s.hide_color, s.blur_sigma)
            probs = np.concatenate([np.asarray(predict(b)) for b in
                                    perturbed_batches(x[i], pert.segments, pert.data, fill, self.batch_size)])
            w, intercept, score, local = fit_surrogate(pert.data, probs, int(labels[i]), settings, base)
            out.append(Explanation(ids[i], int(labels[i]), pert.segments, w, intercept, score, local, probs[0].copy()))
        return out
