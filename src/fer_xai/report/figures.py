"""The report's figures: PNGs copied or drawn into the figures folder and embedded as data URIs."""

from __future__ import annotations

import base64
import io
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from .. import layout
from .blocks import rel_path

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Figures:
    """PNG figures: copied or drawn into the figures folder and embedded as data URIs."""

    def __init__(self, folder: Path, link_prefix: str):
        self.folder = folder
        self.link_prefix = link_prefix  # figures folder relative to the HTML file
        self.files: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def _block(self, dest: Path, caption: str, width: int | None) -> dict:
        data = dest.read_bytes()
        if not data.startswith(PNG_SIGNATURE):
            raise ValueError(f"{dest}: not a PNG file")
        self.files.append(dest)
        return {"kind": "figure", "name": dest.stem, "caption": caption, "width": width,
                "src": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
                "file": f"{self.link_prefix}/{dest.name}"}

    def copy(self, src: Path, name: str, caption: str, width: int | None = None) -> dict | None:
        """Embed an existing image (converted to PNG if needed); None (logged) when unreadable."""
        dest = self.folder / layout.report_figure_name(name)
        try:
            if src.read_bytes()[:8] == PNG_SIGNATURE:
                shutil.copyfile(src, dest)
            else:
                with Image.open(src) as im:
                    im.save(dest, format="PNG")
        except (OSError, UnidentifiedImageError) as exc:
            log.warning("%s: unreadable figure, left out of the report (%s)", src, exc)
            return None
        return self._block(dest, f"{caption} (from {rel_path(src)})", width)

    def draw(self, draw: Callable[[Path], Any], name: str, caption: str, width: int | None = None) -> dict:
        """Embed a figure drawn by ``draw(path)`` for the report."""
        dest = self.folder / layout.report_figure_name(name)
        draw(dest)
        return self._block(dest, caption, width)


def plot_intervals(boot: pd.DataFrame, path: Path) -> Path:
    """Point estimates with their bootstrap intervals, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(boot["metric"]))
    nets = list(dict.fromkeys(boot["model"]))
    exprs = list(dict.fromkeys(boot["expression"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), dpi=110, squeeze=False)
    width = 0.8 / max(1, len(nets))
    for ax, metric in zip(axes[0], metrics):
        sub = boot[boot["metric"] == metric]
        for i, net in enumerate(nets):
            cell = sub[sub["model"] == net].set_index("expression").reindex(exprs)
            x = np.arange(len(exprs)) + (i - (len(nets) - 1) / 2) * width
            est = cell["estimate"].to_numpy(float)
            err = np.vstack([est - cell["ci_low"].to_numpy(float), cell["ci_high"].to_numpy(float) - est])
            ax.errorbar(x, est, yerr=np.clip(np.nan_to_num(err), 0, None), fmt="o", ms=4, capsize=2, label=net)
        ax.set_xticks(np.arange(len(exprs)), exprs, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_ylim(0, 1)
        ax.set_title("IoU" if metric == "iou" else metric.upper() if len(metric) <= 2 else metric)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def png_bytes_ok(data: bytes) -> bool:
    """True when ``data`` is a PNG that PIL can decode."""
    if not data.startswith(PNG_SIGNATURE):
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        return True
    except (OSError, UnidentifiedImageError, SyntaxError):
        return False
