"""The masks drawn over the canonical template with the 89 point numbers (cf. paper Figure 4)."""

from __future__ import annotations

import os

import numpy as np

from ..faces.canonical import CanonicalSpace


def overview(space: CanonicalSpace, masks: dict[str, np.ndarray], path: str | os.PathLike,
             reference: dict[str, np.ndarray] | None = None, ncols: int = 3) -> None:
    """Save a grid of masks (green) over the template points (red, numbered 1-89).

    With ``reference``, pixels only in the reference are drawn orange and the title shows IoU.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .build import iou

    names = list(masks)
    nrows = max(1, -(-len(names) // ncols))
    h, w = space.shape
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 4.1 * nrows), dpi=130, squeeze=False)
    pts = space.control
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        rgb = np.ones((h, w, 3))
        rgb[masks[name]] = (0.2, 0.85, 0.2)
        title = name
        if reference is not None and name in reference:
            ref = reference[name]
            rgb[ref & ~masks[name]] = (1.0, 0.6, 0.1)
            title = f"{name} (IoU {iou(masks[name], ref):.3f})"
        ax.imshow(rgb, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="nearest")
        ax.plot(pts[:, 0], pts[:, 1], "r.", ms=2.5)
        for i, (x, y) in enumerate(pts):
            ax.text(x + 1.5, y - 1.5, str(i + 1), fontsize=3.6, color="navy")
        ax.add_patch(plt.Rectangle((-0.5, -0.5), w, h, fill=False, lw=0.6, ec="gray"))
        ax.set_xlim(-4, w + 3)
        ax.set_ylim(h + 3, -6)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
