"""Warp speed: 100 explanation maps of 10 faces into the canonical space, ours vs scikit-image.

    .venv/bin/python benchmarks/bench_warp.py [--size 224] [--images 10] [--maps 10] [--repeats 3]

Faces: the first ``--images`` prepared faces (``data/prepared``) with their landmarks scaled to
``--size`` px, or random similarity transforms of the template when no prepared set exists.
Maps: piecewise-constant LIME-like maps (random weights on SLIC-sized blocks), ``--maps`` per face.

* ours: one dense grid per face (``CanonicalSpace.grid``), then ``cv2.remap`` of each of its
  maps (linear);
* scikit-image: ``PiecewiseAffineTransform.from_estimate`` once per face (the transform reused
  for all its maps, the fairest baseline) and ``skimage.transform.warp`` of each map (order 1).

Both results are compared inside the face hull (they must agree) and the best of ``--repeats``
runs is reported. Last line: ``warp_speedup: <scikit-image seconds / our seconds>``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def faces_and_maps(root: Path, n_images: int, n_maps: int, size: int, space, seed: int = 0):
    rng = np.random.default_rng(seed)
    landmarks = None
    try:
        from fer_xai.prepared import load_prepared

        ps = load_prepared(root / "data" / "prepared")
        ids = ps.manifest["id"].tolist()[:n_images]
        if len(ids) == n_images:
            _, landmarks = ps.faces(ids, size)
            source = f"{n_images} prepared faces ({root / 'data' / 'prepared'})"
    except (FileNotFoundError, ValueError):
        pass
    if landmarks is None:
        c = space.landmarks.mean(0)
        landmarks = np.stack([(space.landmarks - c) * rng.uniform(0.5, 0.65) * size / 275 + size / 2
                              + rng.normal(0, 0.5, (68, 2)) for _ in range(n_images)])
        source = f"{n_images} random template faces"
    block = max(2, size // 6)  # about 36 blocks: SLIC's ~30 superpixels
    maps = []
    for _ in range(n_images):
        coarse = rng.random((n_maps, -(-size // block), -(-size // block))).astype(np.float32)
        coarse[coarse < 0.6] = 0.0
        maps.append(np.repeat(np.repeat(coarse, block, axis=1), block, axis=2)[:, :size, :size])
    return np.asarray(landmarks, np.float64), maps, source


def run_ours(space, landmarks, maps, size):
    out = []
    for lm, stack in zip(landmarks, maps):
        grid = space.grid(lm, (size, size))
        out.append([grid.apply(m, "linear") for m in stack])
    return out


def run_skimage(space, landmarks, maps, size):
    from skimage.transform import PiecewiseAffineTransform, warp

    out = []
    for lm, stack in zip(landmarks, maps):
        tform = PiecewiseAffineTransform.from_estimate(space.control, space.source_control_points(lm, (size, size)))
        out.append([warp(m, tform, output_shape=space.shape, order=1, mode="edge", preserve_range=True)
                    for m in stack])
    return out


def best_time(fn, repeats):
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="explanation map size (px)")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--maps", type=int, default=10, help="maps per face")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--root", default=".")
    a = ap.parse_args()

    from fer_xai.faces.canonical import canonical_space

    space = canonical_space()
    landmarks, maps, source = faces_and_maps(Path(a.root), a.images, a.maps, a.size, space)
    n = sum(len(s) for s in maps)
    run_ours(space, landmarks[:1], [maps[0][:1]], a.size)  # warm-up (imports, first-call costs)
    run_skimage(space, landmarks[:1], [maps[0][:1]], a.size)
    t_ours, ours = best_time(lambda: run_ours(space, landmarks, maps, a.size), a.repeats)
    t_sk, ref = best_time(lambda: run_skimage(space, landmarks, maps, a.size), a.repeats)
    hull = space.face_hull_mask()
    diff = np.concatenate([np.abs(o - r)[hull] for oo, rr in zip(ours, ref) for o, r in zip(oo, rr)])
    print(f"{n} maps of {len(maps)} faces ({source}), {a.size} px -> {space.width}x{space.height}")
    print(f"ours (grid per face + cv2.remap): {t_ours:.4f} s  ({1000 * t_ours / n:.3f} ms/map)")
    print(f"scikit-image (transform per face + warp): {t_sk:.4f} s  ({1000 * t_sk / n:.3f} ms/map)")
    print(f"agreement inside the face hull: {np.mean(diff <= 0.01):.5f} of pixels within 0.01, "
          f"max |diff| {diff.max():.4f}")
    print(f"warp_speedup: {t_sk / t_ours:.1f}")


if __name__ == "__main__":
    main()
