"""How far the demo's training is from what this machine can compute: images/s, FLOP/s and the peak.

    .venv/bin/python benchmarks/bench_train_throughput.py [--models songnet weinet] [--json out.json]

Per network of the demo profile (``train.models`` of params.yaml, each at its demo ``input_size``
and batch): the network built and compiled by ``fer_xai.training.fit.compile_network`` (the
project's training settings: input normalisation, batch-norm momentum, optimizer, mixed
precision), fed by ``fer_xai.training.augment.make_dataset`` (the network's augmentation) and
fitted with ``model.fit`` and the project's epoch logger, MLflow off, on ``--images`` synthetic
faces (default 288: the demo's 360 images less a test fold). One untimed epoch traces the step;
the next ``--epochs`` are timed.

FLOPs per training image: ``fer_xai.models.flops`` counts the multiply-adds of every convolution
and dense layer from the model's shapes (2 FLOPs each) and takes 3x the forward pass for forward
+ backward; elementwise layers are left out, so achieved GFLOP/s is a slight underestimate.

The machine's peak for the same kind of work, in TensorFlow on every core it uses: a float32
matmul (``--matmul`` n x n) and batched float32 convolutions, 3x3 and 5x5 (SongNet's conv2), at
``--conv`` (batch, side, channels) and at a quarter of the side with 4x the channels; each traced
once and repeated, the best of ``--reps`` timings, measured before and after the networks (the
better of the two: on a shared machine other jobs lower either). The fraction is achieved / the
best convolution, by wall time and by this process's CPU time (GFLOP per CPU-second: the share
of the cores it got does not enter, so it holds better when other jobs share the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TQDM_DISABLE", "1")


def _best_seconds(fn, reps: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of ``reps`` calls, each the minimum over the calls."""
    fn()  # trace and warm up
    wall = cpu = float("inf")
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu


def peak_gflops(matmul_n: int, conv: tuple[int, int, int], reps: int) -> dict:
    """Measured GFLOP/s of a large float32 matmul and of the best of a few batched convolutions."""
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(0)
    a, b = rng.normal((matmul_n, matmul_n)), rng.normal((matmul_n, matmul_n))
    mm = tf.function(lambda: tf.linalg.matmul(a, b))
    t_mm, c_mm = _best_seconds(lambda: mm().numpy(), reps)
    batch, side, ch = conv
    convs = []
    for kernel, sd, c in ((3, side, ch), (5, side, ch), (3, max(side // 4, 1), ch * 4)):
        x, k = rng.normal((batch, sd, sd, c)), rng.normal((kernel, kernel, c, c))
        cv = tf.function(lambda x=x, k=k: tf.nn.conv2d(x, k, strides=1, padding="SAME"))
        t_cv, c_cv = _best_seconds(lambda cv=cv: cv().numpy(), reps)
        flops = 2 * batch * sd * sd * c * c * kernel * kernel
        convs.append({"kernel": kernel, "batch": batch, "side": sd, "channels": c, "seconds": t_cv,
                      "gflops": flops / t_cv / 1e9, "gflops_per_cpu_second": flops / c_cv / 1e9})
    best = max(convs, key=lambda r: r["gflops"])
    return {"matmul": {"n": matmul_n, "seconds": t_mm, "gflops": 2 * matmul_n**3 / t_mm / 1e9,
                       "gflops_per_cpu_second": 2 * matmul_n**3 / c_mm / 1e9},
            "conv": best, "convs": convs}


def _better(p: dict, q: dict) -> dict:
    return {"matmul": max(p["matmul"], q["matmul"], key=lambda r: r["gflops"]),
            "conv": max(p["conv"], q["conv"], key=lambda r: r["gflops"]), "convs": p["convs"] + q["convs"]}


def synthetic_faces(n: int, size: int, seed: int = 0):
    """(images uint8 (n, size, size), labels, core boxes): smooth random blobs, six balanced classes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, 8, 8)).astype(np.float32)
    reps = -(-size // 8)
    images = np.kron(coarse, np.ones((reps, reps), np.float32))[:, :size, :size].astype(np.uint8)
    labels = np.arange(n) % 6
    boxes = np.tile(np.array([[0.15, 0.2, 0.85, 0.8]], np.float32), (n, 1))
    return images, labels, boxes


def train_throughput(params, model_id: str, n_images: int, epochs: int) -> dict:
    """Images/s of ``model_id``'s real training step on ``n_images`` synthetic faces."""
    import keras

    from fer_xai.models.flops import forward_flops, train_flops_per_image
    from fer_xai.training.augment import make_dataset
    from fer_xai.training.fit import compile_network, epoch_logger

    tp = params.train
    cfg = tp.networks[model_id]
    keras.backend.clear_session()
    keras.utils.set_random_seed(tp.seed)
    net = compile_network(params, model_id, cfg)
    images, labels, boxes = synthetic_faces(n_images, cfg.input_size)
    ds = make_dataset(images, labels, boxes, batch_size=net.batch_size, seed=tp.seed, cfg=tp.augment_for(model_id),
                      training=True)
    net.model.fit(ds, epochs=1, verbose=0, callbacks=[epoch_logger(False)])  # traces the step
    t, c = time.perf_counter(), time.process_time()
    net.model.fit(ds, epochs=epochs, verbose=0, callbacks=[epoch_logger(False)])
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    per_image = train_flops_per_image(net.model)
    ips = n_images * epochs / wall
    return {"model": model_id, "input_size": cfg.input_size, "batch": net.batch_size,
            "params": net.model.count_params(), "images": n_images, "epochs_timed": epochs,
            "seconds": wall, "cpu_seconds": cpu, "images_per_second": ips,
            "steps_per_second": ips / net.batch_size, "forward_gflops_per_image": forward_flops(net.model) / 1e9,
            "train_gflops_per_image": per_image / 1e9, "achieved_gflops": ips * per_image / 1e9,
            "gflops_per_cpu_second": n_images * epochs * per_image / cpu / 1e9}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", type=Path, default=None, help="params file (default: the project's params.yaml)")
    ap.add_argument("--models", nargs="+", default=None, help="default: train.models")
    ap.add_argument("--images", type=int, default=288)
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs after the tracing epoch")
    ap.add_argument("--matmul", type=int, default=2048)
    ap.add_argument("--conv", type=int, nargs=3, default=[32, 56, 64], metavar=("BATCH", "SIDE", "CHANNELS"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    a = ap.parse_args(argv)

    import tensorflow as tf

    from fer_xai.config import load_params

    params = load_params(a.params)
    res: dict = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(),
                 "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                 "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
                 "mixed_precision": params.train.mixed_precision}
    before = peak_gflops(a.matmul, tuple(a.conv), a.reps)
    rows = []
    for m in a.models or params.train.models:
        rows.append(train_throughput(params, m, a.images, a.epochs))
        print(f"{m}: {rows[-1]['images_per_second']:.1f} images/s", flush=True)
    peak = res["peak"] = _better(before, peak_gflops(a.matmul, tuple(a.conv), a.reps))
    c = peak["conv"]
    cpu_peak = peak["conv_gflops_per_cpu_second"] = max(r["gflops_per_cpu_second"] for r in peak["convs"])
    print(f"peak: matmul {a.matmul}^2 {peak['matmul']['gflops']:.1f} GFLOP/s, conv {c['kernel']}x{c['kernel']} "
          f"(batch {c['batch']}, {c['side']} px, {c['channels']} channels) {c['gflops']:.1f} GFLOP/s "
          f"(best per CPU-second: {cpu_peak:.1f})", flush=True)
    for r in rows:
        r["fraction_of_conv_peak"] = r["achieved_gflops"] / peak["conv"]["gflops"]
        r["fraction_of_matmul_peak"] = r["achieved_gflops"] / peak["matmul"]["gflops"]
        # Per CPU-second of this process: less sensitive to other jobs on a shared machine.
        r["cpu_fraction_of_conv_peak"] = r["gflops_per_cpu_second"] / cpu_peak
        print(f"{r['model']:12s} {r['input_size']:4d} px batch {r['batch']:3d}: {r['images_per_second']:7.1f} images/s "
              f"({r['steps_per_second']:5.1f} steps/s), {r['train_gflops_per_image']:.3f} GFLOP/image, "
              f"{r['achieved_gflops']:6.1f} GFLOP/s = {100 * r['fraction_of_conv_peak']:5.1f}% of the conv peak "
              f"(per CPU-second: {r['gflops_per_cpu_second']:5.1f} = {100 * r['cpu_fraction_of_conv_peak']:5.1f}%)",
              flush=True)
    res["networks"] = rows
    res["load_avg_end"] = os.getloadavg()
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
