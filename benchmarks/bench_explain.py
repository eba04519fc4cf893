"""LIME speed: ours vs the ``lime`` package, and vs the bare forward passes (issue 4).

    .venv/bin/python benchmarks/bench_explain.py [--samples 1000] [--images 10]

Explains the same synthetic face images (generated here; SLIC on noise gives one segment) with
the same randomly initialised model, for a small CNN at 64 px (SongNet) and the demo backbone
(MobileNetV3 at its params.yaml input size), four ways:

1. ``lime``'s ``explain_instance(image, model.predict, batch_size=10)``, as users usually call it;
2. ``lime`` with the Keras model itself as ``classifier_fn`` (the paper's code), batch 10;
3. ours (:func:`fer_xai.explain.explain_images`, graph mode, batched perturbations);
4. the bare forward passes of as many images, at the best batch size, with nothing else.

All four use the same segments per image. Prints per-model timings and ratios, then
``lime_speedup: <1/3 for the small CNN>`` and ``forward_overhead: <largest 3/4>``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TQDM_DISABLE", "1")  # lime always shows a progress bar


def faces(n: int, size: int):
    import cv2
    import numpy as np

    from fer_xai.images import read_gray
    from fer_xai.synthface.generator import Config, generate

    out = Path(tempfile.mkdtemp(prefix="bench_explain_")) / "synth"
    generate(Config(seed=3, n_subjects=2, intensities=(1.0,), image_size=160), out, workers=1)
    paths = sorted((out / "images").rglob("*.png"))[:n]
    # Keep the face: the generator centres it; crop the middle like the aligned crops.
    imgs = []
    for p in paths:
        g = read_gray(p)
        h = g.shape[0]
        imgs.append(cv2.resize(g[h // 8: h - h // 16, h // 8: h - h // 8], (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(imgs).astype(np.float32), [p.stem for p in paths]


def bench_model(model_id: str, size: int, n_images: int, samples: int, batch_sizes) -> dict:
    import keras
    import numpy as np
    from lime.lime_image import LimeImageExplainer

    from fer_xai.config import load_params
    from fer_xai.explain import LimeSettings, explain_images, make_perturbation
    from fer_xai.explain.perturb import perturbed_batches
    from fer_xai.explain.predictor import GraphPredictor
    from fer_xai.models.zoo import build_network

    params = load_params()
    keras.backend.clear_session()
    model = build_network(model_id, input_size=size, pretrained="none", allow_random_init=True, seed=1,
                          input_norm=params.train.input_norm).model
    imgs, ids = faces(n_images, size)
    predictor = GraphPredictor(model)

    # 4. bare forward passes: the best batch size for this model
    fwd = {}
    for b in batch_sizes:
        x = np.random.default_rng(0).uniform(0, 255, (b, size, size, 1)).astype(np.float32)
        predictor(x)  # trace / warm up
        n_calls = max(1, (samples * n_images) // b)
        t = time.perf_counter()
        for _ in range(n_calls):
            predictor(x)
        fwd[b] = (time.perf_counter() - t) * (samples * n_images) / (n_calls * b)
    best_b = min(fwd, key=fwd.get)

    settings = LimeSettings(num_samples=samples, batch_size=best_b, seed=params.explain.seed, slic=params.explain.slic)
    perts = [make_perturbation(im, i, settings) for im, i in zip(imgs, ids)]
    explain_images(predictor, imgs[:1], ids[:1], settings, perturbations=perts[:1])  # warm-up
    t = time.perf_counter()
    ours = explain_images(predictor, imgs, ids, settings, perturbations=perts)
    t_ours = time.perf_counter() - t

    def run_lime(classifier_fn) -> float:
        classifier_fn(np.zeros((10, size, size, 3), np.float32))  # warm-up
        t = time.perf_counter()
        for im, p in zip(imgs, perts):
            LimeImageExplainer(kernel_width=settings.kernel_width, random_state=0).explain_instance(
                im, classifier_fn, top_labels=1, hide_color=0, num_samples=samples, batch_size=10,
                segmentation_fn=lambda _, s=p.segments: s, random_seed=0)
        return time.perf_counter() - t

    t_predict = run_lime(lambda x: model.predict(x[..., :1], verbose=0))
    t_keras = run_lime(lambda x: model(x[..., :1]))
    perturbed = sum(1 for p in perts for _ in perturbed_batches(imgs[0], p.segments, p.data[:1]))
    assert perturbed == len(perts) and len(ours) == len(imgs)
    res = {"model": model_id, "size": size, "images": len(imgs), "samples": samples, "best_batch": best_b,
           "lime_predict": t_predict, "lime_keras": t_keras, "ours": t_ours, "forward": fwd[best_b],
           "forward_by_batch": fwd}
    print(f"{model_id} @ {size} px, {len(imgs)} images x {samples} samples (best batch {best_b}):")
    print(f"  1 lime + model.predict (batch 10): {t_predict:7.2f} s")
    print(f"  2 lime + Keras model   (batch 10): {t_keras:7.2f} s")
    print(f"  3 ours                           : {t_ours:7.2f} s")
    print(f"  4 bare forward passes            : {fwd[best_b]:7.2f} s   "
          f"(by batch: {', '.join(f'{b}: {v:.2f}' for b, v in fwd.items())})")
    print(f"  ratios: 1/3 = {t_predict / t_ours:.2f}, 2/3 = {t_keras / t_ours:.2f}, 3/4 = {t_ours / fwd[best_b]:.3f}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 256])
    a = ap.parse_args()
    from fer_xai.config import load_params

    backbone_size = load_params().train.networks["mobilenetv3"].input_size
    small = bench_model("songnet", 64, a.images, a.samples, a.batches)
    backbone = bench_model("mobilenetv3", backbone_size, a.images, a.samples, a.batches)
    print(f"lime_speedup_backbone: {backbone['lime_predict'] / backbone['ours']:.2f}")
    print(f"paper_lime_speedup: small {small['lime_keras'] / small['ours']:.2f}, "
          f"backbone {backbone['lime_keras'] / backbone['ours']:.2f}")
    print(f"lime_speedup: {small['lime_predict'] / small['ours']:.2f}")
    print(f"forward_overhead: {max(r['ours'] / r['forward'] for r in (small, backbone)):.3f}")


if __name__ == "__main__":
    main()
