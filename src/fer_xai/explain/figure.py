"""A readable figure of one new image's explanation: the aligned face and the explanation over it,
side by side at :data:`PANEL_PX` pixels each (the network sees 32-224 px faces), a colour bar of
the explanation's values, the predicted expression with its probability and the top three."""

from __future__ import annotations

import numpy as np

from ..labels import DISPLAY_NAMES, EXPRESSIONS

PANEL_PX = 320  # each of the two panels, upscaled from the network's input size
FIGURE_PX = (800, 470)  # (width, height) of the PNG
_DPI = 100
TOP_K = 3


def top_classes(probs: np.ndarray, k: int = TOP_K) -> list[tuple[str, float]]:
    """The ``k`` most probable expressions, most probable first: (expression, probability)."""
    order = np.argsort(-np.asarray(probs, float), kind="stable")[:k]
    return [(EXPRESSIONS[int(i)], float(probs[int(i)])) for i in order]


def _label(expression: str) -> str:
    return DISPLAY_NAMES.get(expression, expression)


def explanation_figure(face: np.ndarray, emap: np.ndarray, probs: np.ndarray, explained: int, title: str,
                       method: str, alpha: float = 0.55) -> np.ndarray:
    """(H, W, 3) uint8 RGB figure of :data:`FIGURE_PX`. ``face``: (S, S) gray aligned face;
    ``emap``: (S, S) explanation for class ``explained`` (zero: no evidence, drawn transparent);
    ``probs``: the model's class probabilities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, height = FIGURE_PX
    fig = plt.figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    try:
        side, top = PANEL_PX / width, PANEL_PX / height
        y0 = 70 / height  # room below the panels for the top three
        ax_face = fig.add_axes((16 / width, y0, side, top))
        ax_map = fig.add_axes((352 / width, y0, side, top))
        ax_bar = fig.add_axes((688 / width, y0, 16 / width, top))
        ax_face.imshow(face, cmap="gray", vmin=0, vmax=255, interpolation="bilinear")
        ax_face.set_title("aligned face (network input)", fontsize=10)
        ax_map.imshow(face, cmap="gray", vmin=0, vmax=255, interpolation="bilinear")
        peak = float(np.max(emap)) if emap.size else 0.0
        shown = np.ma.masked_where(emap <= 0, emap)
        heat = ax_map.imshow(shown, cmap="inferno", vmin=0.0, vmax=peak if peak > 0 else 1.0, alpha=alpha,
                             interpolation="nearest")
        ax_map.set_title(f"{method} evidence for {_label(EXPRESSIONS[explained])}", fontsize=10)
        for ax in (ax_face, ax_map):
            ax.set_axis_off()
        bar = fig.colorbar(heat, cax=ax_bar)
        bar.set_label(f"{method} weight (0: no evidence)", fontsize=9)
        bar.ax.tick_params(labelsize=8)
        ranked = top_classes(probs)
        best, p = ranked[0]
        fig.text(0.5, 1 - 22 / height, f"predicted: {_label(best)}  (p = {p:.2f})", ha="center", va="center",
                 fontsize=16, fontweight="bold")
        fig.text(0.5, 1 - 46 / height, title, ha="center", va="center", fontsize=9, color="0.35")
        top3 = "   ".join(f"{k}. {_label(e)} {q:.2f}" for k, (e, q) in enumerate(ranked, 1))
        fig.text(0.5, 30 / height, f"top {TOP_K}:   {top3}", ha="center", va="center", fontsize=11)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)
