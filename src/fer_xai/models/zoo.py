"""The model zoo: one registry of the study's twelve networks (paper section 3.3, Table 1).

Adding a network is one :class:`NetworkSpec` entry in :data:`NETWORKS` below. Every model built
here

* takes a ``(S, S, 1)`` float32 input named ``"image"`` with gray values in ``[0, 255]``;
* starts with a :class:`~fer_xai.models.preprocess.GrayscalePreprocess` layer named
  ``"preprocess"`` that repeats the channel to RGB and applies the network's input convention
  (``NetworkSpec.preprocess``: the backbone's own ``keras.applications.<family>.preprocess_input``,
  or ``x/255`` for the from-scratch networks);
* ends with a ``Dense(num_classes, softmax)`` layer named ``"predictions"`` (six Ekman classes in
  :data:`fer_xai.labels.EXPRESSIONS` order by default).

ImageNet backbones are nested ``keras.applications`` models built with ``include_top=False``,
followed by ``GlobalAveragePooling2D`` and the new softmax layer, exactly as in the authors'
``nets.py`` (https://github.com/Xavi3398/ekman_expressions). Their parameter count therefore does not
depend on the input size.

Pre-trained weights are never downloaded. ``pretrained="imagenet"`` looks for Keras' own "notop"
weight file (:attr:`NetworkSpec.weights_file`) in ``weights_dir`` and in the Keras cache
(``$KERAS_HOME/models`` when ``KERAS_HOME`` is set, else ``~/.keras/models`` and
``/tmp/.keras/models``). When it is absent, :class:`PretrainedWeightsMissing` is raised unless
``allow_random_init=True``, in which case the backbone is randomly initialised, a WARNING is
logged and the returned record says ``pretrained=False``.

Return types (the choice documented here): :func:`build_network` returns a :class:`BuiltModel`
record (model, spec, input size, whether ImageNet weights were loaded and from where);
:func:`build_model` returns just the ``keras.Model`` and stamps the same facts on it as the plain
attributes ``model.fer_pretrained`` (bool) and ``model.fer_weights_path`` (str or None). These
attributes are not saved in ``.keras`` files.

Keras and TensorFlow are imported only when a model is built, so importing this module (e.g. to
list :data:`NETWORKS`) stays cheap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FerXaiError
from ..labels import EXPRESSIONS
from . import scratch

if TYPE_CHECKING:  # pragma: no cover
    import keras

log = logging.getLogger(__name__)

KERAS_WEIGHTS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"

#: Values of ``pretrained`` that ask for a randomly initialised network on purpose.
NO_PRETRAINING = frozenset({"none", "random", "scratch", "no", "false"})

#: ``preprocessing`` values of :func:`build_network`.
PREPROCESSING_CHOICES = ("keras", "paper")


class ModelZooError(FerXaiError, ValueError):
    """Base class of the zoo's argument errors."""


class UnknownNetworkError(ModelZooError, KeyError):
    """An id that names no registered network."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputSizeError(ModelZooError):
    """An input size below a network's minimum (or not a positive integer)."""


class PretrainedWeightsMissing(FileNotFoundError):
    """The ImageNet weight file of a backbone is not on this machine (nothing is downloaded)."""

    def __init__(self, message: str, *, spec: NetworkSpec, searched: list[Path]):
        super().__init__(message)
        self.spec = spec
        self.file_name = spec.weights_file
        self.searched = searched
        self.url = spec.imagenet_weights_url


Builder = Callable[..., Any]
"""``builder(x, *, input_size, num_classes, weights) -> output tensor``.

``x`` is the preprocessed ``(S, S, 3)`` tensor, ``weights`` is ``None`` or the path of a weight file
(backbones only); the builder returns the softmax output tensor.
"""


@dataclass(frozen=True)
class NetworkSpec:
    """One network of the zoo.

    ``id``: registry key (lowercase); ``display_name``: the name used in the published files
    (``<Net>_CV<k>_<Expression>_heatmap.png``); ``builder``: see :data:`Builder`; ``native_size``:
    the paper's input size (Table 1); ``pretrained_default``: ``"imagenet"`` or ``None`` (trained
    from scratch); ``preprocess``: a :data:`~fer_xai.models.preprocess.MODES` value equivalent to
    the backbone's ``preprocess_input``; ``min_size``: smallest accepted input side (Keras' own
    limit for backbones); ``family``: ``keras.applications`` module of a backbone, or ``"scratch"``.

    Optional: ``table1_params`` (published count), ``imagenet_weights_url`` (Keras' notop file),
    ``aliases`` (other spellings accepted by :func:`network`, e.g. the Keras class name),
    ``paper_epochs``, ``optimizer`` and ``learning_rate`` (the authors' training settings, paper
    section 3.4 and their ``nets.py``), ``reference`` (paper citation).
    """

    id: str
    display_name: str
    builder: Builder
    native_size: int
    pretrained_default: str | None
    preprocess: str
    min_size: int
    family: str
    table1_params: int | None = None
    imagenet_weights_url: str | None = None
    aliases: tuple[str, ...] = ()
    paper_epochs: int | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-4
    reference: str = ""

    @property
    def weights_file(self) -> str | None:
        """Keras' file name of the ImageNet "notop" weights (``None`` for from-scratch networks)."""
        return self.imagenet_weights_url.rsplit("/", 1)[-1] if self.imagenet_weights_url else None

    @property
    def from_scratch(self) -> bool:
        return self.family == "scratch"


def keras_backbone(app_name: str) -> Builder:
    """Builder for ``keras.applications.<app_name>`` without top + GAP + new softmax layer."""

    def build(x: Any, *, input_size: int, num_classes: int, weights: str | None = None) -> Any:
        from keras import applications, layers

        app = getattr(applications, app_name)
        backbone = app(include_top=False, weights=weights, input_shape=(input_size, input_size, 3))
        y = backbone(x)
        y = layers.GlobalAveragePooling2D(name="avg_pool")(y)
        # float32 even under train.mixed_precision: a 16-bit softmax loses small probabilities
        return layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(y)

    build.__name__ = build.__qualname__ = f"keras_backbone_{app_name}"
    build.__doc__ = f"keras.applications.{app_name}(include_top=False) + GlobalAveragePooling2D + softmax."
    build.app_name = app_name  # type: ignore[attr-defined]
    return build


def _url(folder: str, file_name: str) -> str:
    return f"{KERAS_WEIGHTS_BASE}{folder}/{file_name}"


_SCRATCH = dict(pretrained_default=None, preprocess="unit", min_size=32, family="scratch")

#: The registry: id -> spec, in the paper's Table 1 order. One entry per network.
NETWORKS: dict[str, NetworkSpec] = {
    s.id: s
    for s in (
        NetworkSpec("alexnet", "AlexNet", scratch.alexnet, 224, **_SCRATCH, table1_params=88_700_000,
                    paper_epochs=10, optimizer="rmsprop", reference="[64] Krizhevsky et al. 2012"),
        NetworkSpec("weinet", "WeiNet", scratch.weinet, 64, **_SCRATCH, table1_params=1_700_000,
                    paper_epochs=10, optimizer="rmsprop", reference="[72] Wei et al."),
        NetworkSpec("songnet", "SongNet", scratch.songnet, 224, **_SCRATCH, table1_params=172_700,
                    paper_epochs=25, optimizer="rmsprop", reference="[71] Song et al. 2014"),
        NetworkSpec("silnet", "SilNet", scratch.silnet, 150, **_SCRATCH, table1_params=184_900_000,
                    paper_epochs=10, optimizer="adam", reference="[59] Ramis et al. 2022"),
        NetworkSpec("vgg16", "VGG16", keras_backbone("VGG16"), 224, "imagenet", "caffe", 32, "vgg16",
                    table1_params=14_700_000, paper_epochs=2, reference="[65] Simonyan & Zisserman 2015",
                    imagenet_weights_url=_url("vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")),
        NetworkSpec("vgg19", "VGG19", keras_backbone("VGG19"), 224, "imagenet", "caffe", 32, "vgg19",
                    table1_params=20_000_000, paper_epochs=2, reference="[65] Simonyan & Zisserman 2015",
                    imagenet_weights_url=_url("vgg19", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")),
        NetworkSpec("resnet50", "ResNet50", keras_backbone("ResNet50"), 224, "imagenet", "caffe", 32,
                    "resnet", table1_params=23_600_000, paper_epochs=2, reference="[66] He et al. 2016",
                    imagenet_weights_url=_url("resnet", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")),
        NetworkSpec("resnet101v2", "ResNet101V2", keras_backbone("ResNet101V2"), 224, "imagenet", "tf", 32,
                    "resnet_v2", table1_params=42_600_000, paper_epochs=2, reference="[66] He et al. 2016",
                    imagenet_weights_url=_url("resnet",
                                              "resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5")),
        NetworkSpec("inceptionv3", "InceptionV3", keras_backbone("InceptionV3"), 224, "imagenet", "tf", 75,
                    "inception_v3", table1_params=21_800_000, paper_epochs=2,
                    reference="[67] Szegedy et al. 2016",
                    imagenet_weights_url=_url("inception_v3",
                                              "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")),
        NetworkSpec("xception", "Xception", keras_backbone("Xception"), 224, "imagenet", "tf", 71,
                    "xception", table1_params=20_900_000, paper_epochs=2, reference="[68] Chollet 2017",
                    imagenet_weights_url=_url("xception", "xception_weights_tf_dim_ordering_tf_kernels_notop.h5")),
        # Keras' MobileNetV3 and EfficientNetV2 rescale inside the model (include_preprocessing=True);
        # their preprocess_input is the identity, hence "identity" here.
        NetworkSpec("mobilenetv3", "MobileNetV3", keras_backbone("MobileNetV3Large"), 224, "imagenet",
                    "identity", 32, "mobilenet_v3", table1_params=3_000_000, aliases=("MobileNetV3Large",),
                    paper_epochs=10, learning_rate=1e-6, reference="[69] Howard et al. 2019",
                    imagenet_weights_url=_url("mobilenet_v3",
                                              "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5")),
        NetworkSpec("efficientnetv2", "EfficientNetV2", keras_backbone("EfficientNetV2B0"), 224, "imagenet",
                    "identity", 32, "efficientnet_v2", table1_params=5_900_000,
                    aliases=("EfficientNetV2B0",), paper_epochs=10, learning_rate=1e-6,
                    reference="[70] Tan & Le 2021",
                    imagenet_weights_url=_url("efficientnet_v2", "efficientnetv2-b0_notop.h5")),
    )
}


def network(model_id: str) -> NetworkSpec:
    """The spec of ``model_id``: an id, display name or alias, case-insensitive."""
    if isinstance(model_id, NetworkSpec):
        return model_id
    key = str(model_id).strip().lower()
    if key in NETWORKS:
        return NETWORKS[key]
    for spec in NETWORKS.values():
        if key in {spec.display_name.lower(), *(a.lower() for a in spec.aliases)}:
            return spec
    raise UnknownNetworkError(
        f"unknown network {model_id!r}; valid ids: {', '.join(NETWORKS)}"
    )


def display_name(model_id: str) -> str:
    """The published name of a network (``silnet`` -> ``SilNet``); the id itself when not in the zoo."""
    try:
        return network(model_id).display_name
    except UnknownNetworkError:
        return str(model_id)


def keras_cache_dirs() -> list[Path]:
    """Folders where Keras caches downloaded weights (``get_file(cache_subdir="models")``)."""
    if os.environ.get("KERAS_HOME"):
        return [Path(os.environ["KERAS_HOME"]).expanduser() / "models"]
    return [Path("~/.keras/models").expanduser(), Path("/tmp/.keras/models")]


def weight_search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    dirs = [Path(weights_dir).expanduser()] if weights_dir is not None else []
    return dirs + [d for d in keras_cache_dirs() if d not in dirs]


def find_imagenet_weights(spec: NetworkSpec, weights_dir: str | os.PathLike | None = None) -> Path | None:
    """Path of ``spec.weights_file`` in :func:`weight_search_dirs`, or ``None``."""
    if spec.weights_file is None:
        return None
    for folder in weight_search_dirs(weights_dir):
        candidate = folder / spec.weights_file
        if candidate.is_file():
            return candidate
    return None


@dataclass
class BuiltModel:
    """What :func:`build_network` built: the model and whether ImageNet weights were loaded."""

    model: keras.Model
    spec: NetworkSpec
    input_size: int
    pretrained: bool
    weights_path: str | None = None
    preprocessing: str = "keras"
    notes: list[str] = field(default_factory=list)


def _check_size(spec: NetworkSpec, input_size: int | None) -> int:
    if input_size is None:
        return spec.native_size
    if isinstance(input_size, bool) or not isinstance(input_size, int):
        try:
            as_int = int(input_size)
        except (TypeError, ValueError):
            as_int = None
        if as_int is None or as_int != input_size:
            raise InputSizeError(f"input_size must be an integer number of pixels, got {input_size!r}")
        input_size = as_int
    if input_size < spec.min_size:
        raise InputSizeError(
            f"{spec.display_name} needs an input of at least {spec.min_size}x{spec.min_size} px "
            f"(got {input_size}; native size {spec.native_size})"
        )
    return int(input_size)


def _resolve_weights(
    spec: NetworkSpec, pretrained: str | None, weights_dir, allow_random_init: bool
) -> tuple[str | None, list[str]]:
    """The ``weights`` argument for the builder (``None`` or a file path) and notes."""
    notes: list[str] = []
    request = spec.pretrained_default if pretrained is None else str(pretrained)
    if request is None or request.strip().lower() in NO_PRETRAINING:
        return None, notes
    if spec.from_scratch:
        raise ModelZooError(
            f"{spec.display_name} is trained from scratch in the study and has no pre-trained "
            f"weights; use pretrained=None (got {pretrained!r})"
        )
    if request.strip().lower() != "imagenet":
        path = Path(request).expanduser()
        if not path.is_file():
            raise ModelZooError(
                f"pretrained must be 'imagenet', 'none' or the path of a weight file; {request!r} is "
                "none of these"
            )
        return str(path), notes
    found = find_imagenet_weights(spec, weights_dir)
    if found is not None:
        return str(found), notes
    searched = weight_search_dirs(weights_dir)
    where = ", ".join(str(d) for d in searched)
    if not allow_random_init:
        raise PretrainedWeightsMissing(
            f"ImageNet weights for {spec.display_name} not found: put {spec.weights_file!r} "
            f"(Keras' notop file, {spec.imagenet_weights_url}) in one of: {where} "
            "(weights_dir, or the Keras cache $KERAS_HOME/models, default ~/.keras/models); "
            "nothing is downloaded. To train from random initialisation instead pass "
            "allow_random_init=True (or pretrained='none').",
            spec=spec,
            searched=searched,
        )
    message = (
        f"ImageNet weights for {spec.display_name} not found ({spec.weights_file!r} is in none of: "
        f"{where}); building it with RANDOM initialisation because allow_random_init=True. "
        "Results will not be comparable with the paper's pre-trained networks."
    )
    log.warning(message)
    notes.append(message)
    return None, notes


def build_network(
    model_id: str,
    input_size: int | None = None,
    pretrained: str | None = None,
    weights_dir: str | os.PathLike | None = None,
    allow_random_init: bool = False,
    seed: int | None = None,
    *,
    num_classes: int = len(EXPRESSIONS),
    preprocessing: str = "keras",
    input_norm: str = "none",
) -> BuiltModel:
    """Build network ``model_id`` for ``(input_size, input_size, 1)`` gray images in [0, 255].

    ``input_size``: side in pixels, default the paper's native size; below ``spec.min_size`` an
    :class:`InputSizeError` is raised. ``pretrained``: ``None`` = the paper's choice
    (``"imagenet"`` for backbones, none for the from-scratch networks); ``"imagenet"``; ``"none"``
    for random initialisation on purpose (no warning); or the path of a backbone weight file.
    ``weights_dir``: first folder searched for the Keras notop file (then the Keras cache).
    ``allow_random_init``: when the ImageNet file is missing, build randomly initialised with a
    WARNING instead of raising :class:`PretrainedWeightsMissing`. ``seed``: when given,
    ``keras.utils.set_random_seed(seed)`` is called first (this seeds Python, NumPy and the backend
    globally) so initial weights are reproducible. ``num_classes``: softmax width (6 Ekman classes).
    ``preprocessing``: ``"keras"`` (default) applies each backbone's own ``preprocess_input`` inside
    the model; ``"paper"`` reproduces the authors' code, which fed every network ``x/255`` (Keras
    ``ImageDataGenerator(rescale=1/255)``) and no backbone-specific preprocessing. The two are the
    same for the from-scratch networks. ``input_norm``: ``"none"`` (the paper) or ``"per_image"``,
    a :class:`~fer_xai.models.preprocess.PerImageStandardize` layer before the preprocessing.
    """
    spec = network(model_id)
    size = _check_size(spec, input_size)
    if preprocessing not in PREPROCESSING_CHOICES:
        raise ModelZooError(
            f"preprocessing must be one of {', '.join(PREPROCESSING_CHOICES)}, got {preprocessing!r}"
        )
    if int(num_classes) < 2:
        raise ModelZooError(f"num_classes must be at least 2, got {num_classes}")
    weights, notes = _resolve_weights(spec, pretrained, weights_dir, allow_random_init)

    import keras

    from .preprocess import INPUT_NORMS, GrayscalePreprocess, PerImageStandardize

    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    mode = spec.preprocess if preprocessing == "keras" else "unit"
    if input_norm not in INPUT_NORMS:
        raise ModelZooError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, got {input_norm!r}")
    inputs = keras.Input(shape=(size, size, 1), dtype="float32", name="image")
    x = PerImageStandardize(name="standardize")(inputs) if input_norm == "per_image" else inputs
    x = GrayscalePreprocess(mode=mode, name="preprocess")(x)
    outputs = spec.builder(x, input_size=size, num_classes=int(num_classes), weights=weights)
    model = keras.Model(inputs, outputs, name=spec.display_name)
    if weights is not None:
        log.info("%s: loaded pre-trained weights from %s", spec.display_name, weights)
    return BuiltModel(model, spec, size, weights is not None, weights, preprocessing, notes)


def build_model(
    model_id: str,
    input_size: int | None = None,
    pretrained: str | None = None,
    weights_dir: str | os.PathLike | None = None,
    allow_random_init: bool = False,
    seed: int | None = None,
    **kwargs: Any,
) -> keras.Model:
    """:func:`build_network` returning only the (uncompiled) ``keras.Model``.

    The model carries ``fer_pretrained`` (bool) and ``fer_weights_path`` attributes.
    """
    built = build_network(model_id, input_size, pretrained, weights_dir, allow_random_init, seed, **kwargs)
    built.model.fer_pretrained = built.pretrained
    built.model.fer_weights_path = built.weights_path
    return built.model


def load_model(path: str | os.PathLike, **kwargs: Any) -> keras.Model:
    """``keras.saving.load_model`` with the zoo's custom layers registered."""
    import keras

    from . import preprocess  # noqa: F401  (registers fer_xai>GrayscalePreprocess)

    return keras.saving.load_model(path, **kwargs)
