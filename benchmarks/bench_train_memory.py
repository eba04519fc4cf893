"""Peak memory of training the largest backbone at 224 px with the paper's batch of 128.

    .venv/bin/python benchmarks/bench_train_memory.py [--model resnet101v2] [--max-gib 16] [--steps 2]

The trainer's guard (``fer_xai.training.memory.fit_batch_size``) reduces the batch, with a logged
warning, when its estimate exceeds ``train.max_memory_gib``; this script runs real training
steps at the batch it chose and reports the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet101v2")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--max-gib", type=float, default=16.0)
    ap.add_argument("--steps", type=int, default=2)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import keras
    import numpy as np

    from fer_xai.models.zoo import build_network
    from fer_xai.training.memory import estimate_training_bytes, fit_batch_size

    model = build_network(a.model, input_size=a.size, pretrained="none", seed=1).model
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    est = estimate_training_bytes(model, a.batch) / 2**30
    batch = fit_batch_size(model, a.batch, a.max_gib)
    print(f"{a.model} at {a.size}px: {model.count_params():,} params; estimate at batch {a.batch}: {est:.1f} GiB")
    print(f"batch used: {batch} (estimate {estimate_training_bytes(model, batch) / 2**30:.1f} GiB)")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch, a.size, a.size, 1)).astype(np.float32)
    y = rng.integers(0, 6, batch)
    for i in range(a.steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        print(f"step {i + 1}: {time.perf_counter() - t:.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"peak_rss_gib: {peak:.2f}")
    print(f"batch_used: {batch}")


if __name__ == "__main__":
    main()
