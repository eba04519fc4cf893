"""Integrated Gradients (Sundararajan et al. 2017) from a black or a blurred baseline.

attribution = (x - baseline) * mean of the class score's gradient at the ``steps`` midpoints of
the straight path from baseline to x, so the attributions sum to f(x) - f(baseline) up to the
Riemann error (the completeness axiom; checked in the tests). The (image, step) points of all
images are cut into batches of ``explain.batch_size`` for one traced gradient function.
"""

from __future__ import annotations

import numpy as np

from ...config import IntegratedGradientsMethodParams
from .base import MethodResult, as_classes, as_images, blurred, channels, equal_batches, keras_model
from .gradients import pick, score_model, to_input


def gradient_function(model, target: str):
    """``fn(x (B,H,W,C), classes) -> (d score / dx summed over channels (B,H,W), probs, score)``."""
    import tensorflow as tf

    call = score_model(model)
    spec = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32)]

    @tf.function(input_signature=spec)
    def fn(x, classes):
        with tf.GradientTape() as tape:
            tape.watch(x)
            _, probs, logits = call(x)
            score = pick(probs if target == "probability" else logits, classes)
        return tf.reduce_sum(tape.gradient(score, x), axis=-1), probs, score

    return fn


def baselines(x: np.ndarray, kind: str, blur_sigma: float) -> np.ndarray:
    return blurred(x, blur_sigma) if kind == "blur" else np.zeros_like(x)


class IntegratedGradientsExplainer:
    def __init__(self, name: str, settings: IntegratedGradientsMethodParams, batch_size: int):
        self.name, self.settings, self.batch_size = name, settings, int(batch_size)
        self._traced: tuple | None = None  # (model, fn): tracing a backbone's gradient costs ~1 s

    def _function(self, net):
        if self._traced is None or self._traced[0] is not net:
            self._traced = (net, gradient_function(net, self.settings.target))
        return self._traced[1]

    def explain(self, model, images, classes, seed: int, image_ids=None, progress: str | None = None) -> MethodResult:
        from tqdm.auto import tqdm

        s, net = self.settings, keras_model(model)
        x = as_images(images)
        labels = as_classes(classes, len(x))
        base = baselines(x, s.baseline, s.blur_sigma)
        fn, ch = self._function(net), channels(net)
        alphas = ((np.arange(s.steps) + 0.5) / s.steps).astype(np.float32)
        img_of = np.repeat(np.arange(len(x)), s.steps)
        alpha_of = np.tile(alphas, len(x))
        grad_sum = np.zeros(x.shape, np.float64)
        for rows in tqdm(list(equal_batches(len(img_of), self.batch_size)), desc=progress or self.name,
                         disable=progress is None, unit="batch"):
            i, a = img_of[rows], alpha_of[rows][:, None, None]
            g, _, _ = fn(to_input(base[i] + a * (x[i] - base[i]), ch), labels[i].astype(np.int32))
            np.add.at(grad_sum, i, g.numpy())
        maps = ((x - base) * grad_sum / s.steps).astype(np.float32)
        probs = np.zeros((len(x), int(net.output_shape[-1])), np.float32)
        end_scores = np.zeros((2, len(x)), np.float64)  # f(x), f(baseline): completeness is checkable
        for rows in equal_batches(len(x), self.batch_size):
            _, p, fx = fn(to_input(x[rows], ch), labels[rows].astype(np.int32))
            _, _, fb = fn(to_input(base[rows], ch), labels[rows].astype(np.int32))
            probs[rows], end_scores[0, rows], end_scores[1, rows] = p.numpy(), fx.numpy(), fb.numpy()
        return MethodResult(self.name, maps, probs, labels,
                            extra={"score_input": end_scores[0], "score_baseline": end_scores[1]})
