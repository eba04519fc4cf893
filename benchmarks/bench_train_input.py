"""Input pipeline throughput: the augmented ``tf.data`` pipeline vs plain ``model.fit`` on arrays.

Run after ``dvc repro split`` (it reads data/prepared and data/folds.csv):

    .venv/bin/python benchmarks/bench_train_input.py [--model songnet] [--size 64] [--epochs 3]

Prints images/s for both and, last, ``input_pipeline_ratio: <tf.data / numpy>``: a ratio near 1
means augmentation (gamma, translation, landmark-preserving crop, mirroring) costs no training
throughput because the parallel map keeps the cores busy while the model trains.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="songnet")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--root", default=".")
    a = ap.parse_args()

    import keras
    import numpy as np

    from fer_xai.config import AugmentParams
    from fer_xai.models.zoo import build_network
    from fer_xai.training.augment import make_dataset
    from fer_xai.training.data import load_split

    root = Path(a.root)
    train, _ = load_split(root / "data/prepared", root / "data/folds.csv", 1, a.size)
    x = train.images[..., None].astype(np.float32)

    def fresh():
        keras.backend.clear_session()
        m = build_network(a.model, input_size=a.size, pretrained="none", seed=1).model
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    results = {}
    for name in ("numpy", "tf.data"):
        model = fresh()
        if name == "numpy":
            model.fit(x[: a.batch * 2], train.labels[: a.batch * 2], batch_size=a.batch, epochs=1, verbose=0)
            t = time.perf_counter()
            model.fit(x, train.labels, batch_size=a.batch, epochs=a.epochs, shuffle=True, verbose=0)
        else:
            ds = make_dataset(train.images, train.labels, train.core_boxes(), batch_size=a.batch, seed=1,
                              cfg=AugmentParams(), training=True)
            model.fit(ds.take(2), epochs=1, verbose=0)
            t = time.perf_counter()
            model.fit(ds, epochs=a.epochs, verbose=0)
        dt = time.perf_counter() - t
        results[name] = len(train) * a.epochs / dt
        print(f"{name:8s}: {results[name]:8.1f} images/s ({len(train)} images x {a.epochs} epochs in {dt:.1f} s)")
    print(f"model: {a.model} at {a.size} px, batch {a.batch}; tf.data adds augmentation, numpy has none")
    print(f"input_pipeline_ratio: {results['tf.data'] / results['numpy']:.3f}")


if __name__ == "__main__":
    main()
