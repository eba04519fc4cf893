"""A conservative estimate of training memory, to shrink the batch before the OS kills us.

On CPU an out-of-memory training is killed by the kernel rather than raising, so the batch is
checked up front: weights, gradients and two Adam moments, plus the layers' activations kept
for the backward pass, in float32, plus a fixed runtime share. The activation factor is
calibrated on a measurement (benchmarks/bench_train_memory.py, ResNet101V2 at 224 px on
2 CPU cores): peak RSS 4.1 GiB at batch 16 and 9.4 GiB at batch 64, i.e. about 0.6 of the
sum of all layer outputs per image (TensorFlow fuses and frees many intermediates).

With a visible GPU the same estimate is checked against the GPU's free memory (what TensorFlow's
allocator may still hand out) instead of ``train.max_memory_gib``, which bounds host memory.
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


def gpu_free_bytes() -> int | None:
    """Bytes TensorFlow may still allocate on the first visible GPU; None when no GPU is visible."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    # The allocator's limit (TensorFlow reserves most of the card at start) minus what it holds.
    from tensorflow.python.client import device_lib

    limit = next(int(d.memory_limit) for d in device_lib.list_local_devices() if d.device_type == "GPU")
    used = int(tf.config.experimental.get_memory_info("GPU:0")["current"])
    return max(limit - used, 0)


def memory_budget(max_gib: float) -> tuple[int, str]:
    """(bytes, what they are): the free GPU memory when a GPU is visible, else ``max_gib`` GiB."""
    free = gpu_free_bytes()
    if free is None:
        return int(max_gib * 2**30), f"train.max_memory_gib={max_gib:.1f}"
    return free, f"the GPU's free memory {free / 2**30:.1f} GiB"


def forward_bytes_per_image(model) -> int:
    """Every layer output of one image in float32: an upper bound of what an inference batch holds."""
    return _activation_elements(model) * _BYTES


def estimate_training_bytes(model, batch_size: int) -> int:
    state = model.count_params() * _BYTES * 4
    acts = _activation_elements(model) * batch_size * _BYTES * _ACTIVATION_FACTOR
    return int(state + acts + _FIXED_BYTES)


def fit_batch_size(model, batch_size: int, max_gib: float) -> int:
    """The largest batch <= ``batch_size`` (halving) whose estimate fits the memory budget
    (:func:`memory_budget`: ``max_gib`` on CPU, the free GPU memory on a GPU); warns when reduced."""
    limit, what = memory_budget(max_gib)
    b = batch_size
    while b > 1 and estimate_training_bytes(model, b) > limit:
        b //= 2
    if b != batch_size:
        log.warning(
            "batch size reduced from %d to %d: estimated training memory %.1f GiB > %s",
            batch_size, b, estimate_training_bytes(model, batch_size) / 2**30, what,
        )
    return b
