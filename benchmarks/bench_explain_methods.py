"""Cost of each explanation method against the bare model passes it needs.

    .venv/bin/python benchmarks/bench_explain_methods.py [--images 6] [--networks songnet,mobilenetv3]
        [--methods lime,gradcam,...] [--json out.json]

For every network of ``train.models`` (randomly initialised at its params.yaml input size) and
every method of ``explain.methods`` plus the paper's ``lime`` (their params.yaml settings), it
explains the same synthetic faces after a warm-up and reports seconds per image. The floor is
what :func:`fer_xai.explain.methods.cost.passes` says the method needs per image: so many images
classified in graph mode at ``explain.batch_size`` (``GraphPredictor``), and so many gradient
passes of the class score (the Integrated Gradients function, batched), timed alone on the
same batch size. ``ratio`` = method time / passes time; the target is at most 1.2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_explain import faces  # noqa: E402  (the synthetic faces the LIME benchmark uses)

TARGET_RATIO = 1.2


def timed(fn, repeats: int = 1) -> float:
    fn()  # warm-up: tracing and first-call allocation are not the method's steady cost
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def pass_seconds(model, size: int, forward: int, backward: int, batch_size: int) -> float:
    """Seconds for ``forward`` graph-mode classifications plus ``backward`` gradient passes, in
    batches of at most ``batch_size`` (one batch of each size is timed, the rest counted)."""
    import numpy as np

    from fer_xai.explain.methods.base import equal_batches
    from fer_xai.explain.methods.integrated_gradients import gradient_function
    from fer_xai.explain.predictor import GraphPredictor

    rng = np.random.default_rng(0)
    total = 0.0
    if forward:
        predict = GraphPredictor(model)
        x = rng.uniform(0, 255, (min(forward, batch_size), size, size, 1)).astype(np.float32)
        rows = list(equal_batches(forward, batch_size))
        per = timed(lambda: [predict(x[: len(r)]) for r in rows[:1]])
        total += per * len(rows)
    if backward:
        grad = gradient_function(model, "probability")
        rows = list(equal_batches(backward, batch_size))
        x = rng.uniform(0, 255, (len(rows[0]), size, size, 1)).astype(np.float32)
        c = np.zeros(len(rows[0]), np.int32)
        total += timed(lambda: grad(x, c)[0].numpy()) * len(rows)
    return total


def bench(networks: list[str], methods: list[str] | None, n_images: int) -> list[dict]:
    import keras
    import numpy as np

    from fer_xai.config import load_params
    from fer_xai.explain.methods import get_explainer, method_names, method_settings
    from fer_xai.explain.methods.cost import passes
    from fer_xai.models.zoo import build_network

    params = load_params()
    ep = params.explain
    names = methods or method_names(ep)
    rows = []
    for net in networks:
        size = params.train.networks[net].input_size
        keras.backend.clear_session()
        model = build_network(net, input_size=size, pretrained="none", allow_random_init=True, seed=1,
                              input_norm=params.train.input_norm).model
        images, ids = faces(n_images, size)
        classes = np.arange(n_images) % 6
        for name in names:
            ex = get_explainer(name, ep)
            seconds = timed(lambda ex=ex: ex.explain(model, images, classes, seed=ep.seed, image_ids=ids)) / n_images  # noqa: B023
            need = passes(method_settings(name, ep), size)
            # The passes of all n_images together: methods may batch across images (Grad-CAM does).
            floor = pass_seconds(model, size, need.forward * n_images, need.backward * n_images,
                                 ep.batch_size) / n_images
            rows.append({"network": net, "input_size": size, "method": name, "seconds_per_image": seconds,
                         "forward_passes": need.forward, "backward_passes": need.backward,
                         "passes_seconds": floor, "ratio": seconds / floor if floor else float("nan")})
            print(f"{net:12s} {name:22s} {seconds:8.4f} s/img  passes {need.forward:5d} fwd {need.backward:3d} bwd"
                  f"  {floor:8.4f} s  ratio {rows[-1]['ratio']:5.2f}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--networks", default=None, help="comma-separated (default: train.models)")
    ap.add_argument("--methods", default=None, help="comma-separated (default: lime and every explain.methods entry)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from fer_xai.config import load_params

    networks = args.networks.split(",") if args.networks else list(load_params().train.models)
    rows = bench(networks, args.methods.split(",") if args.methods else None, args.images)
    worst = max((r["ratio"] for r in rows), default=float("nan"))
    print(f"max_ratio: {worst:.2f} (target <= {TARGET_RATIO})")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "max_ratio": worst, "target": TARGET_RATIO}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
