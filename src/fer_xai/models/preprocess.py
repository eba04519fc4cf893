"""In-model input preprocessing: grayscale face crops in [0, 255] to what each network expects.

Every network of the zoo takes a ``(H, W, 1)`` float32 image with values in ``[0, 255]``. Its first
layer is a :class:`GrayscalePreprocess` layer (named ``"preprocess"``) that repeats the gray channel
to three channels and applies the input convention of the network that follows:

========== ======================================================== ==========================
mode       operation (on the 3-channel image ``x`` in [0, 255])      Keras ``preprocess_input``
========== ======================================================== ==========================
caffe      RGB -> BGR, minus the ImageNet BGR means                  vgg16, vgg19, resnet50
tf         ``x / 127.5 - 1``                                         resnet_v2, inception_v3,
                                                                      xception, mobilenet(v1/v2)
torch      ``(x / 255 - mean) / std`` (ImageNet RGB statistics)      densenet
identity   nothing (the Keras model rescales inside itself)          mobilenet_v3, efficientnet_v2
unit       ``x / 255`` (what the authors' ImageDataGenerator did)    from-scratch networks
========== ======================================================== ==========================

The layer is serialisable (registered as ``fer_xai>GrayscalePreprocess``), so a model saved as
``.keras`` loads back with :func:`keras.saving.load_model` once this module is imported (see
:func:`fer_xai.models.load_model`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

# Constants of keras.applications.imagenet_utils (channels_last).
CAFFE_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)
TORCH_MEAN_RGB: tuple[float, float, float] = (0.485, 0.456, 0.406)
TORCH_STD_RGB: tuple[float, float, float] = (0.229, 0.224, 0.225)

MODES: tuple[str, ...] = ("caffe", "tf", "torch", "identity", "unit")


@keras.saving.register_keras_serializable(package="fer_xai")
class GrayscalePreprocess(keras.layers.Layer):
    """Repeat a 1-channel image to 3 channels and apply a backbone's input convention.

    A 3-channel input is accepted too (no repetition), so the layer can be reused on RGB images.
    The layer has no weights; ``mode`` is one of :data:`MODES`.
    """

    def __init__(self, mode: str = "identity", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}; expected one of {', '.join(MODES)}")
        self.mode = mode

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], 3)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        channels = x.shape[-1]
        if channels == 1:
            x = ops.repeat(x, 3, axis=-1)
        elif channels != 3:
            raise ValueError(f"GrayscalePreprocess expects 1 or 3 channels, got {channels}")
        if self.mode == "caffe":
            mean = ops.convert_to_tensor(np.asarray(CAFFE_MEAN_BGR, dtype="float32"), dtype=x.dtype)
            return ops.flip(x, axis=-1) - mean
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(np.asarray(TORCH_MEAN_RGB, dtype="float32"), dtype=x.dtype)
            std = ops.convert_to_tensor(np.asarray(TORCH_STD_RGB, dtype="float32"), dtype=x.dtype)
            return (x / 255.0 - mean) / std
        if self.mode == "unit":
            return x / 255.0
        return x

    def get_config(self) -> dict:
        config = super().get_config()
        config["mode"] = self.mode
        return config


def reference_preprocess(gray: np.ndarray, mode: str) -> np.ndarray:
    """NumPy reference of :class:`GrayscalePreprocess` for ``(..., H, W, 1)`` gray images.

    Used by the tests and handy for debugging; the model applies the layer itself, so callers
    never need this to feed a network.
    """
    if mode not in MODES:
        raise ValueError(f"unknown preprocessing mode {mode!r}; expected one of {', '.join(MODES)}")
    x = np.repeat(np.asarray(gray, dtype=np.float32), 3, axis=-1)
    if mode == "caffe":
        return x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, dtype=np.float32)
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        return (x / 255.0 - np.asarray(TORCH_MEAN_RGB, np.float32)) / np.asarray(TORCH_STD_RGB, np.float32)
    if mode == "unit":
        return x / 255.0
    return x


INPUT_NORMS: tuple[str, ...] = ("none", "per_image")
# Per-image standardisation maps each face to this mean and standard deviation (in [0, 255]
# units), so the network-specific preprocessing that follows sees its usual value range.
STANDARD_MEAN, STANDARD_STD = 128.0, 50.0


@keras.saving.register_keras_serializable(package="fer_xai")
class PerImageStandardize(keras.layers.Layer):
    """Remove each image's own brightness and contrast: ``(x - mean) / std * 50 + 128``, clipped.

    Subjects' lighting and skin tone differ far more than their expressions do; without this a
    plain CNN (no batch normalisation) first has to learn to ignore them. Being a layer, the
    same normalisation applies to every image an explainer feeds the model.
    """

    def __init__(self, epsilon: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(x - mean), axis=(1, 2, 3), keepdims=True))
        y = (x - mean) / ops.maximum(std, self.epsilon) * STANDARD_STD + STANDARD_MEAN
        return ops.clip(y, 0.0, 255.0)

    def get_config(self) -> dict:
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config


def reference_standardize(gray: np.ndarray, epsilon: float = 1.0) -> np.ndarray:
    """NumPy reference of :class:`PerImageStandardize` for a batch ``(N, H, W, C)``."""
    x = np.asarray(gray, dtype=np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = x.std(axis=(1, 2, 3), keepdims=True)
    return np.clip((x - mean) / np.maximum(std, epsilon) * STANDARD_STD + STANDARD_MEAN, 0.0, 255.0)
