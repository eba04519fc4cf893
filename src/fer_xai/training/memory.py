"""A conservative estimate of training memory, to shrink the batch before the OS kills us.

On CPU an out-of-memory training is killed by the kernel rather than raising, so the batch is
checked up front: weights, gradients and two Adam moments, plus the layers' activations kept
for the backward pass, in float32, plus a fixed runtime share. The activation factor is
calibrated on a measurement (benchmarks/bench_train_memory.py, ResNet101V2 at 224 px on
2 CPU cores): peak RSS 4.1 GiB at batch 16 and 9.4 GiB at batch 64, i.e. about 0.6 of the
sum of all layer outputs per image (TensorFlow fuses and frees many intermediates).
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)
_BYTES = 4
_ACTIVATION_FACTOR = 0.6  # measured share of layer outputs alive at the peak (see above)
_FIXED_BYTES = int(1.5 * 2**30)  # TensorFlow runtime, input pipeline, Python


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
    acts = _activation_elements(model) * batch_size * _BYTES * _ACTIVATION_FACTOR
    return int(state + acts + _FIXED_BYTES)


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
