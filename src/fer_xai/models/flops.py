"""Floating-point operations of a Keras model, counted from its layers' shapes.

Only the layers that carry the arithmetic are counted: convolutions (plain, depthwise, separable)
and dense layers, one multiply-add = 2 FLOPs. Pooling, batch norm, activations and additions are
elementwise (well under 5% of a convolutional network's work) and left out. A training step costs
about 3x the forward pass: the backward pass computes the gradient with respect to the input and
with respect to the weights, each about one forward pass of work.
"""

from __future__ import annotations

import numpy as np

TRAIN_TO_FORWARD = 3.0  # forward + backward (input and weight gradients)


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape[1:])


def _layer_macs(layer) -> int:
    from keras import layers

    if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)):
        kh, kw = layer.kernel_size
        in_c = _shape(layer.input)[-1]
        out = _shape(layer.output)
        positions = int(np.prod(out[:-1]))
        if isinstance(layer, layers.DepthwiseConv2D):
            return positions * in_c * layer.depth_multiplier * kh * kw
        if isinstance(layer, layers.SeparableConv2D):
            mid = in_c * layer.depth_multiplier
            return positions * (mid * kh * kw + mid * out[-1])
        return positions * out[-1] * kh * kw * in_c // layer.groups
    if isinstance(layer, layers.Dense):
        inp = _shape(layer.input)
        return int(np.prod(inp[:-1])) * inp[-1] * layer.units
    return 0


def forward_flops(model) -> int:
    """FLOPs of one image's forward pass (2 per multiply-add); nested models are counted inside."""
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            total += forward_flops(layer)
        else:
            total += 2 * _layer_macs(layer)
    return total


def train_flops_per_image(model) -> int:
    """FLOPs of one training image: forward + backward, :data:`TRAIN_TO_FORWARD` x the forward pass."""
    return int(TRAIN_TO_FORWARD * forward_flops(model))
