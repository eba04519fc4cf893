"""Held-out fold evaluation: accuracy, macro P/R/F1, confusion matrix, per-image predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support

from ..labels import DISPLAY_NAMES, EXPRESSIONS


def test_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict:
    y_pred = probs.argmax(axis=1)
    labels = list(range(len(EXPRESSIONS)))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {
        "test_accuracy": float(accuracy_score(y_true, y_pred)),
        "test_macro_precision": float(p),
        "test_macro_recall": float(r),
        "test_macro_f1": float(f),
        "n_test": int(len(y_true)),
    }


def confusion(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return confusion_matrix(y_true, probs.argmax(axis=1), labels=list(range(len(EXPRESSIONS))))


def report_text(y_true: np.ndarray, probs: np.ndarray) -> str:
    return classification_report(
        y_true, probs.argmax(axis=1), labels=list(range(len(EXPRESSIONS))),
        target_names=[DISPLAY_NAMES[e] for e in EXPRESSIONS], digits=4, zero_division=0,
    )


def predictions_frame(ids: np.ndarray, subjects: np.ndarray, y_true: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """One row per test image; the explanation stage picks its positives from ``pred``."""
    df = pd.DataFrame({
        "id": ids,
        "subject": subjects,
        "label": [EXPRESSIONS[i] for i in y_true],
        "pred": [EXPRESSIONS[i] for i in probs.argmax(axis=1)],
        "confidence": probs.max(axis=1).round(6),
    })
    df["correct"] = df["label"] == df["pred"]
    for k, e in enumerate(EXPRESSIONS):
        df[f"p_{e}"] = probs[:, k].round(6)
    return df


def plot_confusion(cm: np.ndarray, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [DISPLAY_NAMES[e] for e in EXPRESSIONS]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=120)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
