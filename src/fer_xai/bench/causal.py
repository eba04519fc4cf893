"""The causal check (synthetic data only): replace a region by the subject's neutral face.

For an explained image x of class c, its neutral twin n (same identity, pose, light and noise,
pixel-aligned) and a region R, the drop is ``p_c(x) - p_c(x with R taken from n)``. Swapping in
the neutral face removes the expression there and nothing else, so unlike black or blurred
occlusion it stays on the data. A method whose top region explains the decision drops p_c about
as much as the planted AU region; a random region of the same area is the floor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def batched_probs(predict: Predict, images: np.ndarray | Iterable[np.ndarray], batch_size: int = 128) -> np.ndarray:
    """Probabilities of (N, H, W) images in [0, 255], ``batch_size`` at a time ((B, H, W, 1) float32)."""
    x = np.asarray(images, np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if not len(x):
        return np.zeros((0, 0), np.float32)
    return np.concatenate([np.asarray(predict(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])


def swap_in(images: np.ndarray, neutrals: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """``images`` with the pixels of ``regions`` (N, H, W) bool taken from ``neutrals``."""
    images, neutrals, regions = np.asarray(images), np.asarray(neutrals), np.asarray(regions, bool)
    if not images.shape == neutrals.shape == regions.shape:
        raise ValueError(f"images {images.shape}, neutrals {neutrals.shape} and regions {regions.shape} differ")
    return np.where(regions, neutrals, images)


def class_drops(predict: Predict, images: np.ndarray, neutrals: np.ndarray, classes: np.ndarray,
                regions: Mapping[str, np.ndarray], batch_size: int = 128) -> dict[str, np.ndarray]:
    """Per region kind, the (N,) drop of each image's class probability when that region comes
    from the neutral face; also ``"base"``: p_c(x). All kinds go through one batched pass."""
    classes = np.asarray(classes, int)
    n = len(images)
    kinds = list(regions)
    stack = [np.asarray(images, np.float32)] + [swap_in(images, neutrals, regions[k]).astype(np.float32)
                                                 for k in kinds]
    probs = batched_probs(predict, np.concatenate(stack), batch_size) if n else np.zeros((0, 1))
    rows = np.arange(n)
    base = probs[:n][rows, classes] if n else np.zeros(0)
    out = {"base": base}
    for j, k in enumerate(kinds, start=1):
        out[k] = base - probs[j * n:(j + 1) * n][rows, classes] if n else np.zeros(0)
    return out


def causal_share(drop_region: float, drop_planted: float, drop_random: float) -> float:
    """How much of the planted region's effect the method's region has, above the random floor:
    ``(region - random) / (planted - random)``; NaN when the planted region itself does not beat
    the floor (nothing to compare with)."""
    gap = drop_planted - drop_random
    return float((drop_region - drop_random) / gap) if np.isfinite(gap) and gap > 0 else float("nan")


def verdict(drop_region: float, drop_planted: float, drop_random: float, planted_precision: float,
            min_gap: float = 0.02, share: float = 0.5) -> str:
    """Which explanation fits a method's hot region of one expression (``planted_precision``: the
    share of the region on the planted AU regions):

    - ``"artefact"``: swapping it for the neutral face barely moves the class probability (less than
      ``share`` of the planted region's effect above the random floor) and it lies mostly off the
      AU regions: the map is not the evidence;
    - ``"partial"``: it barely moves it, but lies mostly on the AU regions: the right place, too
      little of it (the rest of the expression still carries the decision);
    - ``"contrastive"``: it moves it (at least ``share``) although it lies mostly off the AU
      regions: real evidence elsewhere, e.g. "no nose wrinkle";
    - ``"planted"``: it moves it and lies mostly on the AU regions;
    - ``"undecided"``: the planted region itself moves the probability less than ``min_gap`` above
      the random region (a model that does not use the expression there).
    """
    if not np.isfinite(drop_planted - drop_random) or drop_planted - drop_random < min_gap:
        return "undecided"
    on_planted = planted_precision >= 0.5
    if causal_share(drop_region, drop_planted, drop_random) < share:
        return "partial" if on_planted else "artefact"
    return "planted" if on_planted else "contrastive"
