"""What the paper profile costs: one backbone epoch, one LIME explanation, and a per-network sweep.

    .venv/bin/python benchmarks/bench_paper_cost.py                      # everything below
    .venv/bin/python benchmarks/bench_paper_cost.py --epoch resnet50 --lime resnet50 --sweep none

Reads data/prepared and data/folds.csv (the demo data: run ``dvc repro split`` first). Every
network is built at the paper's input size (``fer_xai.config._paper_networks``) from random
initialisation (the cost of a step does not depend on the weights) with ``input_norm: none``.

1. ``--epoch M``: one full training epoch of M over the training images of fold 1 (all folds but
   fold 1), batch ``--batch`` (default 32), through the same augmented ``tf.data`` pipeline as
   ``fer-xai train``, after one warm-up batch.
2. ``--lime M``: LIME explanations of aligned faces with ``explain.num_samples`` perturbations
   (``params.yaml``; paper: 1000) exactly as ``fer-xai explain`` makes them; the first
   explanation traces the graph (reported as cold), the next ``--lime-images`` are timed.
3. ``--sweep``: for each network, seconds per training image (``--sweep-batches`` batches after a
   warm-up batch) and per forward image at the LIME batch size, to scale the two measurements
   above to the twelve networks.

Then prints the extrapolation to the paper's study: 12 networks x 5 folds, each network's epochs
from the paper, ``--dataset-images`` images over the five datasets (default 1584: CK+ 309 peak
frames without contempt, BU-4DFE 606 middle frames, JAFFE 183, WSEFEP 180 and FEGA 306 without
neutral), 4/5 of them trained on per fold, and ``explain.positives_per_class`` x 6 explanations
per fold job (at most the fold's test images, since only test images are explained).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TQDM_DISABLE", "1")

ALL = ["alexnet", "weinet", "songnet", "silnet", "vgg16", "vgg19", "resnet50", "resnet101v2",
       "inceptionv3", "xception", "mobilenetv3", "efficientnetv2"]


def _build(model_id: str, size: int):
    import keras

    from fer_xai.models.zoo import build_network

    keras.backend.clear_session()
    model = build_network(model_id, input_size=size, pretrained="none", allow_random_init=True, seed=1,
                          input_norm="none").model
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _train_data(size: int, batch: int):
    from fer_xai.config import AugmentParams
    from fer_xai.training.augment import make_dataset
    from fer_xai.training.data import load_split

    train, _ = load_split(Path("data/prepared"), Path("data/folds.csv"), 1, size)
    ds = make_dataset(train.images, train.labels, train.core_boxes(), batch_size=batch, seed=1,
                      cfg=AugmentParams(), training=True)
    return train, ds


def epoch_seconds(model_id: str, size: int, batch: int) -> dict:
    model = _build(model_id, size)
    train, ds = _train_data(size, batch)
    model.fit(ds.take(1), epochs=1, verbose=0)
    t, c = time.perf_counter(), time.process_time()
    model.fit(ds, epochs=1, verbose=0)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    return {"model": model_id, "size": size, "batch": batch, "images": len(train), "seconds": dt,
            "cpu_seconds": dc, "seconds_per_image": dt / len(train), "params": model.count_params()}


def train_seconds_per_image(model_id: str, size: int, batch: int, batches: int) -> tuple[float, float]:
    """(wall, CPU) seconds per training image."""
    model = _build(model_id, size)
    _, ds = _train_data(size, batch)
    model.fit(ds.take(1), epochs=1, verbose=0)
    t, c = time.perf_counter(), time.process_time()
    model.fit(ds.take(batches), epochs=1, verbose=0)
    return (time.perf_counter() - t) / (batches * batch), (time.process_time() - c) / (batches * batch)


def forward_seconds_per_image(model_id: str, size: int, batch: int, batches: int = 1) -> tuple[float, float]:
    """(wall, CPU) seconds per forward image at ``batch``."""
    import numpy as np

    from fer_xai.explain.predictor import GraphPredictor

    predictor = GraphPredictor(_build(model_id, size))
    x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 1)).astype(np.float32)
    predictor(x)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(batches):
        predictor(x)
    return (time.perf_counter() - t) / (batches * batch), (time.process_time() - c) / (batches * batch)


def lime_seconds(model_id: str, size: int, n_images: int) -> dict:
    import numpy as np

    from fer_xai.config import load_params
    from fer_xai.explain import LimeSettings, explain_images
    from fer_xai.explain.predictor import GraphPredictor
    from fer_xai.prepared import load_prepared

    ep = load_params().explain
    settings = LimeSettings.from_params(ep)
    ps = load_prepared(Path("data/prepared"))
    ids = ps.manifest["id"].iloc[: n_images + 1]
    faces, _ = ps.faces(ids, size)
    predictor = GraphPredictor(_build(model_id, size))
    t = time.perf_counter()
    explain_images(predictor, faces[:1].astype(np.float32), ids.iloc[:1].tolist(), settings)
    cold = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    explain_images(predictor, faces[1:].astype(np.float32), ids.iloc[1:].tolist(), settings)
    warm, warm_cpu = (time.perf_counter() - t) / n_images, (time.process_time() - c) / n_images
    return {"model": model_id, "size": size, "num_samples": settings.num_samples,
            "batch": settings.batch_size, "cold_seconds": cold, "seconds_per_image": warm,
            "cpu_seconds_per_image": warm_cpu}


def extrapolate(rows: dict, epoch: dict | None, lime: dict | None, dataset_images: int, folds: int,
                kinds: tuple[str, ...] = ("wall",), explained_per_class: int = 100, lime_overhead_s: float = 0.0,
                num_samples: int | None = None) -> dict:
    """The paper study's hours from per-network rates, printed and returned.

    ``rows``: network -> {"epochs", "train_s_per_image", "forward_s_per_image"} (and the
    ``_cpu_`` variants for kind "cpu"). ``epoch`` / ``lime``: the direct measurements of one
    network (as :func:`epoch_seconds` / :func:`lime_seconds` return them) that scale its rows'
    few-batch rates, and through the same factor every network's. ``lime_overhead_s``: seconds
    per explanation besides the forward passes (segmentation, ridge), added to each one;
    ``num_samples``: perturbations per explanation (default: ``lime``'s, else 1000).
    """
    n_train = dataset_images * (folds - 1) / folds
    n_test = dataset_images / folds
    per_job = min(explained_per_class * 6, n_test)
    samples = num_samples or (lime or {}).get("num_samples", 1000)
    out: dict = {"n_train_per_fold": n_train, "explained_per_job": per_job, "num_samples": samples}
    print(f"extrapolation ({len(rows)} networks x {folds} folds, {n_train:.0f} training images per fold, "
          f"{per_job:.0f} explanations per job, {samples} samples each):")
    keys = {"wall": ("train_s_per_image", "forward_s_per_image"),
            "cpu": ("train_cpu_s_per_image", "forward_cpu_s_per_image")}
    for kind in kinds:
        tk, fk = keys[kind]
        # Scale the sweep's few batches by the directly measured epoch / explanations where
        # the same network was measured both ways (the longer measurement is less noisy).
        t_scale = v_scale = 1.0
        if epoch and epoch["model"] in rows:
            e = epoch
            t_scale = (e["seconds"] if kind == "wall" else e["cpu_seconds"]) / e["images"] / rows[e["model"]][tk]
        if lime and lime["model"] in rows:
            per = lime["seconds_per_image"] if kind == "wall" else lime["cpu_seconds_per_image"]
            v_scale = per / (lime["num_samples"] * rows[lime["model"]][fk])
        train_h = sum(r[tk] * t_scale * n_train * r["epochs"] * folds for r in rows.values()) / 3600
        lime_h = sum((r[fk] * v_scale * samples + lime_overhead_s) * per_job * folds for r in rows.values()) / 3600
        out[kind] = {"train_scale": t_scale, "lime_scale": v_scale, "train_hours": train_h, "lime_hours": lime_h}
        print(f"  {kind:4s}: training {train_h:7.1f} h, explanations {lime_h:7.1f} h, total "
              f"{train_h + lime_h:7.1f} h (scales: train x{t_scale:.2f}, LIME x{v_scale:.2f})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epoch", default="resnet50", help="network whose full epoch is timed ('none': skip)")
    ap.add_argument("--lime", default="resnet50", help="network whose LIME explanation is timed ('none': skip)")
    ap.add_argument("--lime-images", type=int, default=2, help="timed explanations after the cold one")
    ap.add_argument("--sweep", nargs="+", default=ALL, help="networks of the per-network sweep ('none': skip)")
    ap.add_argument("--sweep-batches", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dataset-images", type=int, default=1584)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    a = ap.parse_args()

    from fer_xai.config import _paper_networks, load_params

    paper = _paper_networks()
    lime_batch = load_params().explain.batch_size
    res: dict = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg()}
    if a.epoch != "none":
        e = epoch_seconds(a.epoch, paper[a.epoch].input_size, a.batch)
        res["epoch"] = e
        print(f"epoch: {e['model']} {e['size']} px, batch {e['batch']}, {e['images']} images, "
              f"{e['params']:,} params: {e['seconds']:.1f} s wall, {e['cpu_seconds']:.1f} s CPU "
              f"({e['seconds_per_image'] * 1000:.1f} ms/image wall)", flush=True)
    if a.lime != "none":
        lm = lime_seconds(a.lime, paper[a.lime].input_size, a.lime_images)
        res["lime"] = lm
        print(f"lime: {lm['model']} {lm['size']} px, {lm['num_samples']} samples, batch {lm['batch']}: "
              f"{lm['seconds_per_image']:.1f} s/image wall, {lm['cpu_seconds_per_image']:.1f} s CPU "
              f"(first, with tracing: {lm['cold_seconds']:.1f} s wall)", flush=True)
    sweep = [] if a.sweep == ["none"] else a.sweep
    rows = {}
    for m in sweep:
        size = paper[m].input_size
        tr, tr_cpu = train_seconds_per_image(m, size, a.batch, a.sweep_batches)
        fw, fw_cpu = forward_seconds_per_image(m, size, lime_batch)
        rows[m] = {"size": size, "epochs": paper[m].epochs, "train_s_per_image": tr, "train_cpu_s_per_image": tr_cpu,
                   "forward_s_per_image": fw, "forward_cpu_s_per_image": fw_cpu}
        print(f"sweep: {m:15s} {size:4d} px  train {tr * 1000:8.1f} ms/image ({tr_cpu * 1000:8.1f} CPU)  "
              f"forward {fw * 1000:7.1f} ms/image ({fw_cpu * 1000:7.1f} CPU)", flush=True)
    res["sweep"] = rows
    res["load_avg_end"] = os.getloadavg()

    if rows:
        res["extrapolation"] = extrapolate(rows, res.get("epoch"), res.get("lime"), a.dataset_images, a.folds,
                                           kinds=("wall", "cpu"))
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
