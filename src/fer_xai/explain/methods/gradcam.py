"""Grad-CAM (Selvaraju et al. 2017): the last conv layer's maps weighted by their mean gradient.

The class score is the logit (the softmax layer's input), as in the paper; the map is ReLU'd and
resized bilinearly to the input size. One traced ``tf.function`` per model does a batch's
forward and backward pass.
"""

from __future__ import annotations

import numpy as np

from ...config import GradCamMethodParams
from .base import MethodResult, as_classes, as_images, channels, equal_batches, keras_model
from .gradients import last_conv_layer, pick, score_model, to_input


def gradcam_function(model, layer_name: str | None = None):
    """``fn(x (B,H,W,C), classes (B,)) -> (cams (B,H,W), probs (B,K))`` in one tf.function."""
    import tensorflow as tf

    layer = last_conv_layer(model, layer_name)
    call = score_model(model, layer)
    size = tuple(int(d) for d in model.input_shape[1:3])
    spec = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32)]

    @tf.function(input_signature=spec)
    def fn(x, classes):
        with tf.GradientTape() as tape:
            feats, probs, logits = call(x)
            score = pick(logits, classes)
        grads = tape.gradient(score, feats)
        alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(alpha * feats, axis=-1))
        cam = tf.image.resize(cam[..., None], size, method="bilinear")[..., 0]
        return cam, probs

    return fn, layer.name


class GradCamExplainer:
    def __init__(self, name: str, settings: GradCamMethodParams, batch_size: int):
        self.name, self.settings, self.batch_size = name, settings, int(batch_size)
        self._traced: tuple | None = None  # (model, fn, layer): tracing a backbone's gradient costs ~1 s

    def _function(self, net):
        if self._traced is None or self._traced[0] is not net:
            self._traced = (net, *gradcam_function(net, self.settings.layer))
        return self._traced[1:]

    def explain(self, model, images, classes, seed: int, image_ids=None, progress: str | None = None) -> MethodResult:
        from tqdm.auto import tqdm

        net = keras_model(model)
        x = as_images(images)
        labels = as_classes(classes, len(x))
        fn, layer = self._function(net)
        maps, probs = np.zeros(x.shape, np.float32), np.zeros((len(x), int(net.output_shape[-1])), np.float32)
        ch = channels(net)
        batches = list(equal_batches(len(x), self.batch_size))
        for rows in tqdm(batches, desc=progress or self.name, disable=progress is None, unit="batch"):
            cam, p = fn(to_input(x[rows], ch), labels[rows].astype(np.int32))
            maps[rows], probs[rows] = cam.numpy(), p.numpy()
        return MethodResult(self.name, maps, probs, labels, extra={"layer": np.array([layer] * len(x))})
