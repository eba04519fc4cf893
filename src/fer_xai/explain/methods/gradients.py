"""What the gradient methods share: the class score (probability or logit) and the conv layer to explain."""

from __future__ import annotations

import numpy as np


def _is_conv(layer) -> bool:
    return any("Conv" in cls.__name__ for cls in type(layer).__mro__)


def last_conv_layer(model, name: str | None = None):
    """The layer Grad-CAM explains: ``name``, else the last convolution (or nested backbone) with a 4-D output.

    The zoo's backbones are one nested ``keras.Model`` whose output is the last convolutional
    block's feature map; the from-scratch networks have their ``Conv2D`` layers at top level.
    """
    import keras

    if name is not None:
        try:
            return model.get_layer(name)
        except ValueError as exc:
            raise ValueError(f"gradcam.layer {name!r}: no such layer in {model.name}") from exc
    found = None
    for layer in model.layers:
        if _rank(layer) == 4 and (_is_conv(layer) or isinstance(layer, keras.Model)):
            found = layer
    if found is None:
        raise ValueError(f"{model.name}: no convolutional layer with a 4-D output for Grad-CAM")
    return found


def outer_output(layer):
    """The layer's output tensor in the graph of the model that calls it.

    For a nested backbone ``layer.output`` is the backbone's own graph output, not connected to
    the outer inputs; the node of its (single) call in the outer model holds the outer tensor.
    Keras 3 has no public accessor for it.
    """
    nodes = getattr(layer, "_inbound_nodes", None)
    return nodes[-1].outputs[0] if nodes else layer.output


def _rank(layer) -> int:
    try:
        return len(outer_output(layer).shape)
    except (AttributeError, ValueError, IndexError):
        return 0


def score_model(model, feature_layer=None):
    """A Keras model x -> (features or None, probabilities, logits); logits are the softmax layer's input.

    The zoo's heads end in ``Dense(activation="softmax")``: its pre-activation is the class logit.
    Other heads fall back to log-probabilities (equal to logits up to a per-image constant).
    """
    import keras

    last = model.layers[-1]
    dense_softmax = isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", "") == "softmax"
    outs = [model.output]
    if dense_softmax:
        outs.append(last.input)
    if feature_layer is not None:
        outs.append(outer_output(feature_layer))
    inner = keras.Model(model.inputs, outs)

    def call(x):
        from keras import ops

        res = inner(x, training=False)
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        probs = res[0]
        logits = ops.matmul(res[1], last.kernel) + last.bias if dense_softmax else ops.log(probs + 1e-12)
        feats = res[-1] if feature_layer is not None else None
        return feats, probs, logits

    return call


def pick(scores, classes):
    """scores[i, classes[i]] for a batch."""
    import tensorflow as tf

    return tf.gather(scores, classes, axis=1, batch_dims=1)


def to_input(batch: np.ndarray, channels: int) -> np.ndarray:
    x = np.asarray(batch, np.float32)[..., None]
    return np.repeat(x, channels, axis=-1) if channels != 1 else x
