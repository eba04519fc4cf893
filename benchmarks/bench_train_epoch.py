"""Seconds per training epoch over the demo data, per network, at the sizes in params.yaml.

    .venv/bin/python benchmarks/bench_train_epoch.py [--models alexnet weinet songnet silnet] [--batch 32]

Reads data/prepared and data/folds.csv (run ``dvc repro split`` first). One warm-up batch, then
one full epoch (all folds but fold 1) through the same augmented tf.data pipeline as training.
Prints one ``epoch_seconds.<model>: <s>`` line per network.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["alexnet", "weinet", "songnet", "silnet"])
    ap.add_argument("--batch", type=int, default=None, help="default: train.batch_size from params.yaml")
    ap.add_argument("--size", type=int, default=None, help="default: each network's input_size in params.yaml")
    a = ap.parse_args()

    import keras

    from fer_xai.config import AugmentParams, load_params
    from fer_xai.models.zoo import build_network
    from fer_xai.training.augment import make_dataset
    from fer_xai.training.data import load_split

    params = load_params()
    batch = a.batch or params.train.batch_size
    for m in a.models:
        cfg = params.train.networks[m]
        size = a.size or cfg.input_size
        train, _ = load_split(Path("data/prepared"), Path("data/folds.csv"), 1, size)
        keras.backend.clear_session()
        model = build_network(m, input_size=size, pretrained="none", seed=1,
                              input_norm=params.train.input_norm).model
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        ds = make_dataset(train.images, train.labels, train.core_boxes(), batch_size=batch, seed=1,
                          cfg=AugmentParams(), training=True)
        model.fit(ds.take(1), epochs=1, verbose=0)
        t = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0)
        dt = time.perf_counter() - t
        print(f"{m}: {size} px, batch {batch}, {len(train)} images, {model.count_params():,} params: "
              f"{dt:.1f} s/epoch ({len(train) / dt:.0f} images/s)")
        print(f"epoch_seconds.{m}: {dt:.2f}")


if __name__ == "__main__":
    main()
