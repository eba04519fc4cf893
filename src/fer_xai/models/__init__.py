"""Model zoo of the study's twelve networks (paper section 3.3, Table 1).

>>> from fer_xai.models import NETWORKS, build_model
>>> model = build_model("weinet")              # (64, 64, 1) gray in [0, 255] -> 6-way softmax
>>> model = build_model("vgg16", 96, allow_random_init=True)   # no ImageNet file -> WARNING

See :mod:`fer_xai.models.zoo` for the registry and the weight-file rules,
:mod:`fer_xai.models.scratch` for the four from-scratch architectures and their sources and
:mod:`fer_xai.models.preprocess` for the in-model preprocessing layer.
"""

from .zoo import (
    NETWORKS,
    BuiltModel,
    InputSizeError,
    ModelZooError,
    NetworkSpec,
    PretrainedWeightsMissing,
    UnknownNetworkError,
    build_model,
    build_network,
    find_imagenet_weights,
    keras_cache_dirs,
    load_model,
    network,
)

__all__ = [
    "NETWORKS",
    "BuiltModel",
    "InputSizeError",
    "ModelZooError",
    "NetworkSpec",
    "PretrainedWeightsMissing",
    "UnknownNetworkError",
    "build_model",
    "build_network",
    "find_imagenet_weights",
    "keras_cache_dirs",
    "load_model",
    "network",
]
