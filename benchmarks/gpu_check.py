"""The paper study's cost on the GPU at hand, measured in under 5 minutes (prepared for a GPU day).

    .venv/bin/python benchmarks/gpu_check.py [--json gpu_check.json]   # on a GPU (make install TF=gpu)
    .venv/bin/python benchmarks/gpu_check.py --small                   # CPU smoke run (automatic without a GPU)

Needs no data: every network is fed synthetic faces (``bench_train_throughput.synthetic_faces``)
through the training pipeline (``make_dataset``, the paper's augmentation), built at the paper's
input size from random initialisation (a step costs the same with ImageNet weights) and compiled
as ``bench_paper_cost`` does. It prints and writes as JSON:

1. one training epoch of ResNet50 and of VGG16 over the paper's training images per fold (1,267
   of 1,584, batch 128 as ``train.batch_size``), after a tracing batch; ``--epoch-fraction`` < 1
   times that share of the batches and scales up;
2. one LIME explanation per network with 1,000 perturbations (``explain`` defaults, the forward
   batch grown to the GPU as ``fer-xai explain`` does), after a tracing one;
3. a sweep of the other paper networks, largest share of the study first, a few training batches
   and forward batches each, while the ``--budget`` lasts; networks the budget leaves out are
   scaled from ResNet50 by their FLOPs at the paper's sizes (``fer_xai.models.flops``) and
   marked ``flops_scaled``;
4. the extrapolated wall time of the whole study with ``bench_paper_cost.extrapolate`` (12
   networks x 5 folds, the paper's epochs, at most 100 explanations per class and fold), each
   explanation costing LIME's measured non-forward overhead plus 1,000 forward passes.

``--small`` (or no visible GPU): 32 px, batch 8, 32 training images, 100 LIME samples, no sweep,
the study restricted to ``--networks`` (default: ResNet50 and VGG16): numbers only a smoke test
can use.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_paper_cost import ALL, _build, extrapolate  # noqa: E402
from bench_train_throughput import synthetic_faces  # noqa: E402

MEASURED = ("resnet50", "vgg16")
# The sweep's order: the networks with the largest share of the CPU estimate (README) first.
SWEEP_ORDER = ["vgg19", "resnet101v2", "inceptionv3", "xception", "silnet", "songnet", "alexnet", "efficientnetv2",
               "weinet", "mobilenetv3"]


def device_info() -> dict:
    import tensorflow as tf

    from fer_xai.training.memory import gpu_free_bytes

    gpus = tf.config.list_physical_devices("GPU")
    info = {"tensorflow": tf.__version__, "gpus": [g.name for g in gpus], "cpu_count": os.cpu_count()}
    if gpus:
        info["gpu_details"] = {k: str(v) for k, v in tf.config.experimental.get_device_details(gpus[0]).items()}
        info["gpu_free_gib"] = gpu_free_bytes() / 2**30
    return info


def _dataset(size: int, n: int, batch: int):
    from fer_xai.config import AugmentParams
    from fer_xai.training.augment import make_dataset

    images, labels, boxes = synthetic_faces(n, size)
    return make_dataset(images, labels, boxes, batch_size=batch, seed=1, cfg=AugmentParams(), training=True)


def epoch(model_id: str, size: int, batch: int, n_train: int, fraction: float):
    """One epoch of ``n_train`` images (or ``fraction`` of its batches, scaled up) after a tracing
    batch: (figures, the trained model)."""
    model = _build(model_id, size)
    steps = max(1, math.ceil(fraction * n_train / batch))
    ds = _dataset(size, min(n_train, steps * batch), batch)
    model.fit(ds.take(1), epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(ds.take(steps), epochs=1, verbose=0)
    dt = time.perf_counter() - t
    timed_images = min(n_train, steps * batch)
    return {"model": model_id, "size": size, "batch": batch, "images": n_train, "timed_images": timed_images,
            "timed_seconds": dt, "seconds": dt * n_train / timed_images, "train_s_per_image": dt / timed_images,
            "params": model.count_params()}, model


def _face(size: int):
    import numpy as np
    from skimage import color, data, transform

    face = color.rgb2gray(data.astronaut())[30:230, 140:340]  # the astronaut's face, as in the tests
    return (transform.resize(face, (size, size), anti_aliasing=True) * 255).astype(np.float32)


def lime(model, model_id: str, size: int, num_samples: int) -> dict:
    """One timed LIME explanation after a tracing one; its forward passes timed on their own too."""
    from fer_xai.config import ExplainParams
    from fer_xai.explain import LimeSettings, explain_images
    from fer_xai.explain.predictor import GraphPredictor

    predictor = GraphPredictor(model)
    settings = LimeSettings.from_params(ExplainParams(num_samples=num_samples)).for_device(predictor)
    face = _face(size)
    explain_images(predictor, face[None], ["trace"], settings)
    t = time.perf_counter()
    explain_images(predictor, face[None], ["timed"], settings)
    seconds = time.perf_counter() - t
    forward = _forward_s_per_image(predictor, size, settings.batch_size)
    return {"model": model_id, "size": size, "num_samples": num_samples, "batch": settings.batch_size,
            "seconds_per_image": seconds, "forward_s_per_image": forward,
            "overhead_s": max(seconds - num_samples * forward, 0.0)}


def _forward_s_per_image(predictor, size: int, batch: int, batches: int = 2) -> float:
    import numpy as np

    x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 1)).astype(np.float32)
    predictor(x)
    t = time.perf_counter()
    for _ in range(batches):
        predictor(x)
    return (time.perf_counter() - t) / (batches * batch)


def sweep_one(model_id: str, size: int, batch: int, lime_batch: int, batches: int = 3) -> dict:
    from fer_xai.explain.predictor import GraphPredictor

    model = _build(model_id, size)
    ds = _dataset(size, batch * batches, batch)
    model.fit(ds.take(1), epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(ds.take(batches), epochs=1, verbose=0)
    train = (time.perf_counter() - t) / (batches * batch)
    return {"train_s_per_image": train, "forward_s_per_image": _forward_s_per_image(GraphPredictor(model), size,
                                                                                     lime_batch)}


def flops_scaled(model_id: str, size: int, ref: dict, ref_flops: int) -> dict:
    """Rates of ``model_id`` from the reference network's, in proportion to the forward FLOPs."""
    import keras

    from fer_xai.models.flops import forward_flops
    from fer_xai.models.zoo import build_network

    keras.backend.clear_session()
    model = build_network(model_id, input_size=size, pretrained="none", allow_random_init=True, seed=1,
                          input_norm="none").model
    ratio = forward_flops(model) / ref_flops
    return {"train_s_per_image": ref["train_s_per_image"] * ratio,
            "forward_s_per_image": ref["forward_s_per_image"] * ratio, "flops_ratio": ratio, "flops_scaled": True}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="CPU smoke sizes (automatic when no GPU is visible)")
    ap.add_argument("--networks", nargs="+", default=None,
                    help="networks of the extrapolated study (default: all twelve; --small: resnet50 vgg16)")
    ap.add_argument("--budget", type=float, default=200.0, help="seconds after which the sweep stops")
    ap.add_argument("--epoch-fraction", type=float, default=1.0)
    ap.add_argument("--dataset-images", type=int, default=1584)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=Path("gpu_check.json"))
    ap.add_argument("--mixed-precision", default="off", choices=["off", "mixed_bfloat16", "mixed_float16"],
                    help="as train.mixed_precision")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()

    from fer_xai.config import TrainParams, _paper_networks
    from fer_xai.models.flops import forward_flops
    from fer_xai.training.fit import apply_numerics

    apply_numerics(TrainParams(mixed_precision=a.mixed_precision))

    info = device_info()
    small = a.small or not info["gpus"]
    paper = _paper_networks()
    networks = a.networks or (list(MEASURED) if small else ALL)
    n_train = a.dataset_images * (a.folds - 1) // a.folds
    batch = 8 if small else TrainParams().batch_size
    samples = 100 if small else 1000

    def size_of(m: str) -> int:
        return 32 if small else paper[m].input_size

    res: dict = {"mode": "small" if small else "gpu", "device": info, "networks": networks,
                 "mixed_precision": a.mixed_precision}
    print(f"device: {info['gpus'] or 'no GPU'} ({res['mode']} sizes)", flush=True)
    rows: dict = {}
    res["epoch"], res["lime"] = {}, {}
    for m in MEASURED:
        e, model = epoch(m, size_of(m), batch, 32 if small else n_train, 1.0 if small else a.epoch_fraction)
        lm = lime(model, m, size_of(m), samples)
        res["epoch"][m], res["lime"][m] = e, lm
        rows[m] = {"size": e["size"], "epochs": paper[m].epochs, "train_s_per_image": e["train_s_per_image"],
                   "forward_s_per_image": lm["forward_s_per_image"]}
        print(f"epoch: {m} {e['size']} px, batch {batch}, {e['images']} images: {e['seconds']:.1f} s "
              f"(timed {e['timed_images']} images in {e['timed_seconds']:.1f} s)", flush=True)
        print(f"lime: {m} {lm['size']} px, {samples} samples, batch {lm['batch']}: {lm['seconds_per_image']:.2f} s "
              f"per explanation ({lm['overhead_s']:.2f} s besides the forward passes)", flush=True)
    lime_batch = res["lime"]["resnet50"]["batch"]
    others = [m for m in SWEEP_ORDER if m in networks] + [m for m in networks if m not in SWEEP_ORDER + list(MEASURED)]
    ref, ref_flops = rows["resnet50"], None
    for m in others:
        if not small and time.perf_counter() - t0 < a.budget:
            r = sweep_one(m, size_of(m), batch, lime_batch)
            size = size_of(m)
        else:
            # FLOPs compared at the paper's input sizes (the study's), also in --small
            if ref_flops is None:
                ref_flops = forward_flops(_build("resnet50", paper["resnet50"].input_size))
            size = paper[m].input_size
            r = flops_scaled(m, size, ref, ref_flops)
        rows[m] = {"size": size, "epochs": paper[m].epochs, **r}
        print(f"sweep: {m:15s} {size:4d} px  train {r['train_s_per_image'] * 1000:8.2f} ms/image  "
              f"forward {r['forward_s_per_image'] * 1000:7.3f} ms/image"
              f"{'  (scaled from resnet50 by FLOPs)' if r.get('flops_scaled') else ''}", flush=True)
    rows = {m: rows[m] for m in networks if m in rows}
    res["sweep"] = rows
    overhead = sum(lm["overhead_s"] for lm in res["lime"].values()) / len(res["lime"])
    res["extrapolation"] = extrapolate(rows, None, None, a.dataset_images, a.folds, lime_overhead_s=overhead,
                                       num_samples=1000)
    total = res["extrapolation"]["wall"]["train_hours"] + res["extrapolation"]["wall"]["lime_hours"]
    res["study_wall_hours"] = total
    res["seconds"] = time.perf_counter() - t0
    print(f"whole study on this device: {total:.2f} h ({len(rows)} networks; this check took {res['seconds']:.0f} s)")
    a.json.write_text(json.dumps(res, indent=2))
    print(f"written: {a.json}")
    return res


if __name__ == "__main__":
    main()
