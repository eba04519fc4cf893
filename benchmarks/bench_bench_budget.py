"""What `fer-xai bench` adds to the demo: the model part per network and the chance warps.

    .venv/bin/python benchmarks/bench_bench_budget.py [--networks songnet,weinet,silnet,mobilenetv3]

With params.yaml's demo values (bench.*, explain.*, explain.methods_enabled, train.networks' input
sizes), each network is built with random weights (the time does not depend on training) and
probed like ``fer-xai bench`` does on ``6 x bench.images_per_class`` synthetic faces with their
neutral twins and AU masks: the causal swaps, deletion/insertion (and the random-order baseline)
and cascading randomisation on the trained model's maps, which the pipeline's explain stages
already made (made here first, timed apart; ``--recompute`` times them as part of the bench).
Then the random-superpixel chance: as many
canonical warps as the demo explains maps (``positives_per_class x 6 x folds x networks``) times
``bench.chance_repeats``. Prints wall and CPU seconds per part and ``bench_total_s``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TQDM_DISABLE", "1")


def synthetic_faces(n_per_class: int, size: int):
    import cv2
    import numpy as np

    from fer_xai.bench.probes import Faces
    from fer_xai.labels import EXPRESSIONS
    from fer_xai.synthface.generator import Config, render_subject

    cfg = Config(seed=3, n_subjects=n_per_class, intensities=(1.0,), image_size=160)
    imgs, neus, masks, cls, ids = [], [], [], [], []

    def crop(a, interp):
        h = a.shape[0]
        return cv2.resize(a[h // 8: h - h // 16, h // 8: h - h // 8], (size, size), interpolation=interp)

    for s in range(n_per_class):
        for _, expr, _, r in render_subject(cfg, s):
            gray = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)  # noqa: E731
            imgs.append(crop(gray(r.image), cv2.INTER_AREA))
            neus.append(crop(gray(r.neutral), cv2.INTER_AREA))
            masks.append(crop(r.mask, cv2.INTER_NEAREST) > 0)
            cls.append(EXPRESSIONS.index(expr))
            ids.append(f"s{s}_{expr}")
    f32 = lambda x: np.stack(x).astype(np.float32)  # noqa: E731
    return Faces(ids, f32(imgs), np.array(cls), f32(neus), np.stack(masks), [EXPRESSIONS[c] for c in cls])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", default=None, help="comma-separated; default train.models")
    ap.add_argument("--recompute", action="store_true",
                    help="time the trained model's maps too (the pipeline reuses the explain stages' maps)")
    a = ap.parse_args()

    import numpy as np

    from fer_xai.bench.probes import probe_model
    from fer_xai.bench.run import bench_methods, explain_functions, probe_settings
    from fer_xai.config import load_params
    from fer_xai.explain.predictor import GraphPredictor
    from fer_xai.models.zoo import build_network

    params = load_params()
    methods = bench_methods(params)
    fns = explain_functions(params, methods)
    nets = a.networks.split(",") if a.networks else list(params.train.models)
    total = total_cpu = 0.0
    print(f"methods: {methods}; bench: {params.bench.model_dump()}")
    for net in nets:
        spec = params.train.networks[net]
        model = build_network(net, spec.input_size, pretrained="none", seed=0,
                              input_norm=params.train.input_norm).model
        faces = synthetic_faces(params.bench.images_per_class, spec.input_size)
        stored = {}
        if not a.recompute:  # what the pipeline has: the explain stages' maps of these faces
            t0, c0 = time.perf_counter(), time.process_time()
            s = probe_settings(params)
            for m, fn in fns.items():
                stored[m] = (np.asarray(fn(model, faces.images, faces.classes, s.explain_seed, faces.ids)), 0.0)
            print(f"{net}: the explain stages' maps (not the bench's cost): {time.perf_counter() - t0:.1f} s wall, "
                  f"{time.process_time() - c0:.1f} s CPU", flush=True)
        t0, c0 = time.perf_counter(), time.process_time()
        tables = probe_model(model, GraphPredictor(model), faces, fns, probe_settings(params), stored=stored)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        total += dt
        total_cpu += cpu
        cost = {r.method: round(r.seconds_per_image, 3) for r in tables["cost"].itertuples()}
        print(f"{net} @{spec.input_size}px: {len(faces.ids)} faces, probe {dt:.1f} s wall, {cpu:.1f} s CPU; "
              f"explain s/image {cost}", flush=True)

    from fer_xai.faces.canonical import canonical_space

    space = canonical_space()
    size = 48
    lm = space.landmarks * (size / max(space.shape)) * 0.8 + size * 0.1  # a face well inside the image
    grid = space.grid(lm, (size, size))
    n = params.explain.positives_per_class * 6 * len(params.train.folds) * len(params.train.models)
    seg = (np.arange(size)[:, None] // 8) * 6 + np.arange(size)[None, :] // 8
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    reps = max(params.bench.chance_repeats, 1)
    for _ in range(min(n * reps, 400)):
        grid.apply(rng.random(seg.max() + 1)[seg].astype(np.float32))
    per = (time.perf_counter() - t0) / min(n * reps, 400)
    chance_s = per * n * params.bench.chance_repeats
    print(f"chance warps: {n} maps x {params.bench.chance_repeats} repeats, {per * 1e3:.2f} ms each: {chance_s:.1f} s")
    total += chance_s
    total_cpu += chance_s
    # Under load (other processes on the cores) wall time overstates the cost; CPU seconds over the
    # cores used bound it from below.
    print(f"bench_total_s: {total:.1f} wall, {total_cpu:.1f} CPU")


if __name__ == "__main__":
    main()
