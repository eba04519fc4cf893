"""The bench's model part: each method's maps of a few correctly classified faces, probed.

For one (network, fold) model and a few faces per class it runs every method once and measures
the causal check (:mod:`.causal`, where the faces have neutral twins), deletion and insertion
(:mod:`.curves`, with one random-order baseline per network) and cascading randomisation
(:mod:`.sanity`), and the seconds per image each method took.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..labels import EXPRESSIONS
from . import causal, curves, regions, sanity

log = logging.getLogger(__name__)

# explain(model, images (N, H, W) float in [0, 255], classes (N,), seed, ids) -> signed maps (N, H, W)
ExplainFn = Callable[[object, np.ndarray, np.ndarray, int, list[str]], np.ndarray]


@dataclass(frozen=True)
class Faces:
    """The probed faces of one model: at its input size, with their class and, where the
    dataset has them, neutral twins and planted AU regions."""

    ids: list[str]
    images: np.ndarray  # (N, S, S) float32 in [0, 255]
    classes: np.ndarray  # (N,) int, true = predicted class
    neutrals: np.ndarray | None = None  # (N, S, S) float32
    planted: np.ndarray | None = None  # (N, S, S) bool: where the true label's expression changed the face
    labels: list[str] | None = None  # true labels (the explained class is ``classes``)


@dataclass(frozen=True)
class ProbeSettings:
    seed: int = 31  # random regions, tie order, random pixel order, randomised weights
    # The methods' own seed (explain.seed): the stored maps were made with it, and a randomised
    # model's maps must differ from the trained one's by the weights only, not by LIME's sampling.
    explain_seed: int = 11
    top_fraction: float = 0.1
    curve_steps: int = 10
    curve_fill: str = "blur"
    sanity_images: int = 6
    sanity_steps: int = 3
    batch_size: int = 128


def causal_rows(predict, faces: Faces, maps: np.ndarray, s: ProbeSettings) -> list[dict]:
    """Per face: drops of its class probability for the method's Otsu and top-k% regions, the
    planted AU region and a random region as large as the Otsu region."""
    if faces.neutrals is None or faces.planted is None:
        return []
    otsu = np.stack([regions.otsu_region(m) for m in maps])
    topk = np.stack([regions.top_fraction_region(m, s.top_fraction, np.random.default_rng([s.seed, i]))
                     for i, m in enumerate(maps)])
    rnd = np.stack([regions.random_blob_region(m.shape, int(o.sum()), np.random.default_rng([s.seed, i]))
                    for i, (m, o) in enumerate(zip(maps, otsu))])
    d = causal.class_drops(predict, faces.images, faces.neutrals, faces.classes,
                           {"otsu": otsu, "top_fraction": topk, "planted": faces.planted, "random": rnd},
                           s.batch_size)
    return [{"id": faces.ids[i], "expression": EXPRESSIONS[faces.classes[i]],
             "label": faces.labels[i] if faces.labels else EXPRESSIONS[faces.classes[i]],
             "p_class": float(d["base"][i]),
             "drop_otsu": float(d["otsu"][i]), "drop_top_fraction": float(d["top_fraction"][i]),
             "drop_planted": float(d["planted"][i]), "drop_random": float(d["random"][i]),
             "otsu_area": float(otsu[i].mean()), "planted_area": float(faces.planted[i].mean()),
             "otsu_in_planted": float((otsu[i] & faces.planted[i]).sum() / max(otsu[i].sum(), 1))}
            for i in range(len(maps))]


def curve_rows(predict, faces: Faces, maps: np.ndarray | None, s: ProbeSettings) -> list[dict]:
    """Per face: deletion and insertion AUCs of ``maps`` (None: the random pixel order)."""
    res = curves.deletion_insertion(predict, faces.images, maps if maps is not None else faces.images,
                                    faces.classes, s.curve_steps, s.curve_fill, s.seed, s.batch_size,
                                    random_order=maps is None)
    return [{"id": faces.ids[i], "expression": EXPRESSIONS[faces.classes[i]],
             "deletion_auc": float(res["deletion"][i]), "insertion_auc": float(res["insertion"][i])}
            for i in range(len(faces.ids))]


def probe_model(model, predict, faces: Faces, methods: dict[str, ExplainFn], s: ProbeSettings,
                sanity_check: bool = True, stored: dict[str, tuple[np.ndarray, float]] | None = None,
                ) -> dict[str, pd.DataFrame]:
    """Every table of the model part for one model: ``causal``, ``curves``, ``sanity``, ``cost``
    (rows carry ``method``; ``curves`` also the ``random`` baseline). ``stored``: per method, the
    trained model's maps of these faces (and their seconds per image) already made elsewhere."""
    stored = stored or {}
    out = {"causal": [], "curves": [], "sanity": [], "cost": []}
    out["curves"] += [{"method": "random", **r} for r in curve_rows(predict, faces, None, s)]
    n_sanity = min(s.sanity_images, len(faces.ids))
    for name, explain in methods.items():
        t0 = time.perf_counter()
        if name in stored:
            maps, per_image = stored[name]
        else:
            maps = np.asarray(explain(model, faces.images, faces.classes, s.explain_seed, faces.ids), np.float32)
            per_image = (time.perf_counter() - t0) / max(len(faces.ids), 1)
        seconds = time.perf_counter() - t0
        out["cost"].append({"method": name, "n_images": len(faces.ids), "seconds_per_image": per_image,
                            "maps": "stored" if name in stored else "computed"})
        out["causal"] += [{"method": name, **r} for r in causal_rows(predict, faces, maps, s)]
        out["curves"] += [{"method": name, **r} for r in curve_rows(predict, faces, maps, s)]
        if sanity_check and n_sanity:
            sub = slice(0, n_sanity)
            ids = faces.ids[:n_sanity]

            def fn(m, imgs, cls, _explain=explain, _ids=ids):
                return _explain(m, imgs, cls, s.explain_seed, _ids)

            rows = sanity.sanity_check(fn, model, faces.images[sub], faces.classes[sub], s.seed, s.sanity_steps,
                                       trained_maps=maps[sub])
            out["sanity"] += [{"method": name, **r} for r in rows]
        log.info("bench %s: %d faces in %.1f s", name, len(faces.ids), seconds)
    return {k: pd.DataFrame(v) for k, v in out.items()}
