"""Which test images to explain: up to N predicted positives per class, drawn with a seed."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from ..labels import EXPRESSIONS

SELECTION_COLUMNS = ["id", "subject", "label", "pred", "correct", "confidence"]


def select_positives(predictions: pd.DataFrame, per_class: int, seed: int, model_id: str, fold: int) -> pd.DataFrame:
    """Rows of ``predictions`` (columns id, label, pred, ...) to explain, grouped by predicted class.

    The paper explains the network's decision, not the label: positives are images *predicted*
    as the class, correct or not. Each (seed, model, fold, class) has its own generator, so adding
    a class or changing one network does not reshuffle the others' choices.
    """
    missing = {"id", "label", "pred"} - set(predictions.columns)
    if missing:
        raise ValueError(f"predictions lack columns {sorted(missing)}")
    chosen = []
    for k, cls in enumerate(EXPRESSIONS):
        cand = predictions[predictions["pred"] == cls].sort_values("id", kind="stable")
        if cand.empty:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(model_id.encode()), fold, k])
        take = rng.choice(len(cand), size=min(per_class, len(cand)), replace=False)
        chosen.append(cand.iloc[np.sort(take)])
    if not chosen:
        return pd.DataFrame(columns=SELECTION_COLUMNS)
    out = pd.concat(chosen, ignore_index=True)
    if "correct" not in out:
        out["correct"] = out["label"] == out["pred"]
    for col in SELECTION_COLUMNS:
        if col not in out:
            out[col] = ""
    return out[SELECTION_COLUMNS]
