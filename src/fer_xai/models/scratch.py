"""The four networks the study trains from scratch, built layer by layer (paper section 3.3).

Source of every layer below: the authors' public implementation, ``nets.py`` of
https://github.com/Xavi3398/ekman_expressions (functions ``AlexNet``, ``WeiNet``, ``SongNet`` and
``SilNet``), read for the layer definitions only. The authors fed every network 3-channel images
(Keras ``flow_from_directory`` default ``color_mode="rgb"`` on grayscale files, rescaled by 1/255);
the zoo reproduces that inside the model (:class:`~fer_xai.models.preprocess.GrayscalePreprocess`
in ``"unit"`` mode repeats the gray channel), so the first convolution has 3 input channels and the
parameter counts round to the published Table 1 values at the native sizes (measured with
Keras 3.15, 6 classes):

=========  ======  =============  ===========
network    native  params (here)  Table 1
=========  ======  =============  ===========
AlexNet    224     88,718,726     88.7 M
WeiNet     64      1,728,230      1.7 M
SongNet    224     172,678        172.7 K
SilNet     150     184,852,038    184.9 M
=========  ======  =============  ===========

All convolutions and poolings use ``padding="same"``, so any input size builds; the spatial size
entering ``Flatten`` (and hence the first dense layer's parameter count) scales with the input:

* AlexNet: ``ceil(S/32)^2 * 256`` features (7x7x256 at 224);
* WeiNet: ``S^2 * 64`` (its poolings have stride 1);
* SongNet: ``ceil(S/16)^2 * 32`` (14x14x32 at 224);
* SilNet: ``ceil(S/2)^2 * 64`` (75x75x64 at 150).

The zoo refuses sizes below 32 px (``NetworkSpec.min_size``): AlexNet's total stride is 32, so below
that its feature map is already 1x1, and a face crop that small carries no expression detail.

Data-augmentation layers (the authors' optional ``augment=True``: flip, rotation, translation,
contrast) are not part of these builders; augmentation belongs to the training input pipeline.
"""

from __future__ import annotations

from typing import Any


def _conv(filters: int, kernel: int, name: str, strides: int = 1, initializer: str = "glorot_uniform"):
    from keras import layers

    return layers.Conv2D(
        filters, kernel, strides=strides, padding="same", activation="relu",
        kernel_initializer=initializer, name=name,
    )


def _pool(size: int, strides: int, name: str):
    from keras import layers

    return layers.MaxPooling2D(pool_size=size, strides=strides, padding="same", name=name)


def _head(x: Any, num_classes: int) -> Any:
    from keras import layers

    # float32 even under train.mixed_precision: a 16-bit softmax loses small probabilities
    return layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)


def alexnet(x: Any, *, input_size: int, num_classes: int, weights: str | None = None) -> Any:
    """AlexNet (Krizhevsky et al. 2012, paper ref [64]) as the authors implemented it.

    Known (authors' ``nets.py``): a single-tower AlexNet without local response normalisation:
    conv 96@11x11/4 - maxpool 3/2 - conv 256@5x5 - maxpool 3/2 - conv 384@3x3 - conv 384@3x3 -
    conv 256@3x3 - maxpool 3/2 - flatten - dense 4096 - dropout 0.4 - dense 4096 - dense 4096 -
    dropout 0.4 - dense softmax. Note the *three* 4096-unit dense layers (the original has two);
    with ``same`` padding the flatten holds 7x7x256 = 12,544 features at 224 px, which gives the
    published 88.7 M parameters. Optimiser in the authors' code: RMSprop, learning rate 1e-4.
    """
    from keras import layers

    x = _conv(96, 11, "conv1", strides=4)(x)
    x = _pool(3, 2, "pool1")(x)
    x = _conv(256, 5, "conv2")(x)
    x = _pool(3, 2, "pool2")(x)
    x = _conv(384, 3, "conv3")(x)
    x = _conv(384, 3, "conv4")(x)
    x = _conv(256, 3, "conv5")(x)
    x = _pool(3, 2, "pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dropout(0.4, name="drop6")(x)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    x = layers.Dense(4096, activation="relu", name="fc8")(x)
    x = layers.Dropout(0.4, name="drop8")(x)
    return _head(x, num_classes)


def weinet(x: Any, *, input_size: int, num_classes: int, weights: str | None = None) -> Any:
    """WeiNet (Wei et al., paper ref [72]) as the authors implemented it.

    Known (authors' ``nets.py``): three blocks of conv 7x7 (32, 32, 64 filters, ReLU) each followed
    by a 2x2 max-pooling with stride 1 (so the resolution never drops), then flatten and the
    softmax layer directly: 64x64x64 = 262,144 features at the native 64 px, 1.7 M parameters,
    almost all of them in the classifier. Optimiser in the authors' code: RMSprop, 1e-4.
    """
    from keras import layers

    x = _conv(32, 7, "conv1")(x)
    x = _pool(2, 1, "pool1")(x)
    x = _conv(32, 7, "conv2")(x)
    x = _pool(2, 1, "pool2")(x)
    x = _conv(64, 7, "conv3")(x)
    x = _pool(2, 1, "pool3")(x)
    x = layers.Flatten(name="flatten")(x)
    return _head(x, num_classes)


def songnet(x: Any, *, input_size: int, num_classes: int, weights: str | None = None) -> Any:
    """SongNet (Song et al. 2014, "Deep learning for real-time robust facial expression recognition
    on a smartphone", paper ref [71]) as the authors implemented it.

    Known (authors' ``nets.py``): conv 64@5x5 - maxpool 3/2 - conv 64@5x5 - maxpool 3/2 -
    conv 32@3x3 - maxpool 3/2 - dropout 0.5 - conv 32@3x3 - maxpool 3/2 - dropout 0.5 - flatten -
    dense softmax (14x14x32 features at 224 px, 172.7 K parameters). Optimiser: RMSprop, 1e-4;
    the paper trains it for 25 epochs.
    """
    from keras import layers

    x = _conv(64, 5, "conv1")(x)
    x = _pool(3, 2, "pool1")(x)
    x = _conv(64, 5, "conv2")(x)
    x = _pool(3, 2, "pool2")(x)
    x = _conv(32, 3, "conv3")(x)
    x = _pool(3, 2, "pool3")(x)
    x = layers.Dropout(0.5, name="drop3")(x)
    x = _conv(32, 3, "conv4")(x)
    x = _pool(3, 2, "pool4")(x)
    x = layers.Dropout(0.5, name="drop4")(x)
    x = layers.Flatten(name="flatten")(x)
    return _head(x, num_classes)


def silnet(x: Any, *, input_size: int, num_classes: int, weights: str | None = None) -> Any:
    """SilNet (Ramis et al. 2022, "A Novel Approach to Cross dataset studies in Facial Expression
    Recognition", paper ref [59]) as the authors implemented it.

    Known (authors' ``nets.py``): conv 32@11x11 - maxpool 2/2 - conv 32@7x7 - conv 32@7x7 -
    maxpool 2/1 - conv 64@5x5 - conv 64@5x5 - maxpool 2/1 - flatten - dense 512 - dropout 0.5 -
    dense 512 - dense softmax; Glorot-normal initialisation for the convolutions and the two
    512-unit layers. Only the first pooling halves the resolution, so 75x75x64 = 360,000
    features reach the first dense layer at 150 px: 184.3 M of the 184.9 M parameters.
    Optimiser in the authors' code: Adam, 1e-4.
    """
    from keras import layers

    init = "glorot_normal"
    x = _conv(32, 11, "conv1", initializer=init)(x)
    x = _pool(2, 2, "pool1")(x)
    x = _conv(32, 7, "conv2", initializer=init)(x)
    x = _conv(32, 7, "conv3", initializer=init)(x)
    x = _pool(2, 1, "pool3")(x)
    x = _conv(64, 5, "conv4", initializer=init)(x)
    x = _conv(64, 5, "conv5", initializer=init)(x)
    x = _pool(2, 1, "pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, activation="relu", kernel_initializer=init, name="fc6")(x)
    x = layers.Dropout(0.5, name="drop6")(x)
    x = layers.Dense(512, activation="relu", kernel_initializer=init, name="fc7")(x)
    return _head(x, num_classes)
