"""A conservative estimate of training memory, to shrink the batch before the OS kills us.

On CPU an out-of-memory training is killed by the kernel rather than raising, so the batch is
checked up front: weights, gradients and two Adam moments, plus every layer's activation
kept for the backward pass and its gradient, in float32.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)
_BYTES = 4
_OVERHEAD = 1.5  # framework workspace, input pipeline and fragmentation


def _activation_elements(model) -> int:
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            total += _activation_elements(layer)
            continue
        outs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        for o in outs:
            shape = [d for d in o.shape[1:] if d is not None]
            total += int(np.prod(shape)) if shape else 1
    return total


def estimate_training_bytes(model, batch_size: int) -> int:
    state = model.count_params() * _BYTES * 4
    acts = _activation_elements(model) * batch_size * _BYTES * 2
    return int((state + acts) * _OVERHEAD)


def fit_batch_size(model, batch_size: int, max_gib: float) -> int:
    """The largest batch <= ``batch_size`` (halving) whose estimate fits ``max_gib``; warns when reduced."""
    limit = max_gib * 2**30
    b = batch_size
    while b > 1 and estimate_training_bytes(model, b) > limit:
        b //= 2
    if b != batch_size:
        log.warning(
            "batch size reduced from %d to %d: estimated training memory %.1f GiB > train.max_memory_gib=%.1f",
            batch_size, b, estimate_training_bytes(model, batch_size) / 2**30, max_gib,
        )
    return b
