"""Model-randomisation sanity check (Adebayo et al. 2018, cascading randomisation).

The model is cloned and the weights of its layers are re-initialised from the top (output) layer
down, cumulatively, with each layer's own initialisers seeded from ``seed``. A method whose maps
of the randomised model still look like those of the trained one (high Spearman rank correlation,
high SSIM) does not explain the model; it fails the check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

# Maps of the fully randomised model that still correlate this much with the trained model's fail.
DEFAULT_MAX_SPEARMAN = 0.5


def weighted_layers(model) -> list:
    """Layers with a kernel (conv, dense, depthwise...), input to output, nested models flattened."""
    out = []

    def walk(layer):
        inner = getattr(layer, "layers", None)
        if inner:
            for sub in inner:
                walk(sub)
        elif getattr(layer, "kernel_initializer", None) is not None or getattr(
                layer, "depthwise_initializer", None) is not None:
            if layer.weights:
                out.append(layer)

    for layer in model.layers:
        walk(layer)
    return out


def _reinitialize(layer, seed: int) -> None:
    """Draw every kernel/bias of ``layer`` afresh from its own initialisers (seeded)."""
    import keras

    for j, var in enumerate(layer.weights):
        name = var.path.rsplit("/", 1)[-1]
        kind = "bias" if "bias" in name else ("depthwise" if "depthwise" in name else "kernel")
        init = next((i for i in (getattr(layer, f"{a}_initializer", None)
                                 for a in (kind, "kernel", "depthwise")) if i is not None), None)
        if init is None:  # a layer naming its variables otherwise: Keras' default kernel initialiser
            init = keras.initializers.GlorotUniform() if kind != "bias" else keras.initializers.Zeros()
        config = keras.initializers.serialize(init)
        if isinstance(config, dict) and "seed" in config.get("config", {}):
            config["config"]["seed"] = int(seed * 1009 + j)  # an unseeded initializer would differ per run
        fresh = keras.initializers.deserialize(config)
        value = np.asarray(fresh(tuple(var.shape), dtype=var.dtype))
        if kind != "bias" and not np.any(value):  # zero-initialised kernels would kill the signal
            value = np.random.default_rng([seed, j]).normal(0.0, 0.05, tuple(var.shape)).astype(value.dtype)
        var.assign(value)


def clone_trained(model):
    """An independent copy of ``model`` with the same weights."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def cascade_points(n_layers: int, steps: int) -> list[int]:
    """How many top layers are randomised at each of ``steps`` points: evenly spread, ending at all."""
    if n_layers < 1:
        return []
    steps = max(1, min(steps, n_layers))
    return sorted({max(1, int(round(n_layers * k / steps))) for k in range(1, steps + 1)})


def cascading_randomization(model, seed: int, steps: int = 3) -> Iterator[tuple[int, int, object]]:
    """Yield (randomised top layers, total weighted layers, model) for each cascade point; the
    yielded model is one clone, randomised further at each point (use it before the next)."""
    clone = clone_trained(model)
    layers = weighted_layers(clone)[::-1]  # from the top
    done = 0
    for upto in cascade_points(len(layers), steps):
        for i in range(done, upto):
            _reinitialize(layers[i], seed + i)
        done = upto
        yield upto, len(layers), clone


def _unit(m: np.ndarray) -> np.ndarray:
    """A map scaled to [0, 1] by its absolute values (sign dropped, as Adebayo et al. compare)."""
    a = np.abs(np.nan_to_num(np.asarray(m, np.float64)))
    top = a.max(initial=0.0)
    return a / top if top > 0 else a


def map_similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Spearman rank correlation, SSIM) of two maps' absolute values; a constant map gives NaN
    Spearman (no ranking) and SSIM of the [0, 1]-scaled maps."""
    ua, ub = _unit(a), _unit(b)
    if ua.std() == 0 or ub.std() == 0:
        rho = float("nan")
    else:
        rho = float(spearmanr(ua.ravel(), ub.ravel()).statistic)
    win = min(7, *ua.shape)
    win -= 1 - win % 2  # odd
    ssim = float(structural_similarity(ua, ub, data_range=1.0, win_size=max(win, 3)))
    return rho, ssim


ExplainFn = Callable[[object, np.ndarray, np.ndarray], np.ndarray]


def sanity_check(explain: ExplainFn, model, images: np.ndarray, classes: np.ndarray, seed: int,
                 steps: int = 3, trained_maps: np.ndarray | None = None) -> list[dict]:
    """Rows ``randomized_layers, total_layers, spearman, ssim`` (means over the images) for each
    cascade point; ``explain(model, images, classes) -> maps`` (``trained_maps``: already made)."""
    trained = np.asarray(explain(model, images, classes) if trained_maps is None else trained_maps)
    rows = []
    for upto, total, rand_model in cascading_randomization(model, seed, steps):
        maps = np.asarray(explain(rand_model, images, classes))
        sims = np.array([map_similarity(a, b) for a, b in zip(trained, maps)], np.float64).reshape(-1, 2)
        rows.append({"randomized_layers": upto, "total_layers": total,
                     "spearman": float(np.nanmean(sims[:, 0])) if np.isfinite(sims[:, 0]).any() else float("nan"),
                     "ssim": float(np.mean(sims[:, 1])) if len(sims) else float("nan")})
    return rows


def passes(rows: list[dict], max_spearman: float = DEFAULT_MAX_SPEARMAN, max_ssim: float = 0.99) -> bool:
    """The verdict: with every layer randomised, the maps' rank correlation with the trained
    model's is at most ``max_spearman``; where no rank correlation exists (constant maps), the
    maps must at least differ (SSIM below ``max_ssim``)."""
    if not rows:
        return False
    rho, ssim = rows[-1]["spearman"], rows[-1]["ssim"]
    if np.isfinite(rho):
        return bool(rho <= max_spearman)
    return bool(np.isfinite(ssim) and ssim < max_ssim)
