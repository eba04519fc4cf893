"""Find and read heatmaps and masks laid out the way the study published them.

* ``<Net>_CV<k>_<Expression>_heatmap.png``: one heatmap per network, fold and expression
  (``heatmaps/by_cv/`` in the published data),
* ``<Net>_<Expression>_heatmap.png``: the same pooled over the folds (``heatmaps/by_net/``),
* ``<Expression>_gt.png``: the Ekman ground-truth masks (3 identical channels, 0/255).

Expressions are reported with their display names (``Anger`` ...), as in the file names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .. import layout
from ..errors import FerXaiError
from ..labels import DISPLAY_NAMES, EXPRESSIONS, normalize_label

log = logging.getLogger(__name__)

# Display names of the six expressions in the published order (Anger .. Surprise).
EXPRESSION_NAMES: tuple[str, ...] = tuple(DISPLAY_NAMES[e] for e in EXPRESSIONS)

# Row order of the paper's Tables 3 and 4; networks not listed follow alphabetically.
PAPER_NETWORK_ORDER: tuple[str, ...] = (
    "SilNet", "WeiNet", "AlexNet", "SongNet", "InceptionV3", "VGG19", "VGG16",
    "ResNet50", "ResNet101V2", "Xception", "MobileNetV3", "EfficientNetV2",
)


class CompareInputError(FerXaiError, ValueError):
    """An input of the comparison that cannot be used; the message names the file(s)."""


def network_sort_key(name: str) -> tuple[int, str]:
    try:
        return (PAPER_NETWORK_ORDER.index(name), "")
    except ValueError:
        return (len(PAPER_NETWORK_ORDER), name.lower())


def sort_networks(names) -> list[str]:
    return sorted(set(names), key=network_sort_key)


def expression_display(raw: str) -> str | None:
    """``anger``/``Angry``/``Anger`` -> ``Anger``; ``None`` for anything not one of the six."""
    canon = normalize_label(raw)
    if canon not in EXPRESSIONS:
        return None
    return DISPLAY_NAMES[canon]


@dataclass
class HeatmapIndex:
    """Paths of the published-layout heatmaps found under one folder."""

    root: Path
    by_cv: dict[tuple[str, int, str], Path] = field(default_factory=dict)  # (net, fold, Expr)
    by_net: dict[tuple[str, str], Path] = field(default_factory=dict)  # (net, Expr)

    @property
    def networks(self) -> list[str]:
        return sort_networks(k[0] for k in self.by_cv)

    @property
    def expressions(self) -> list[str]:
        found = {k[2] for k in self.by_cv} | {k[1] for k in self.by_net}
        return [e for e in EXPRESSION_NAMES if e in found]

    def folds(self, net: str) -> list[int]:
        return sorted({f for n, f, _ in self.by_cv if n == net})


def _register(table: dict, key, path: Path) -> None:
    if key in table and table[key] != path:
        raise CompareInputError(
            f"two heatmaps for the same {key}: {table[key]} and {path}; keep only one"
        )
    table[key] = path


def find_heatmaps(heatmaps_dir: str | os.PathLike, subdirs: Sequence[str] | None = None) -> HeatmapIndex:
    """Index ``<Net>_CV<k>_<Expr>_heatmap.png`` and ``<Net>_<Expr>_heatmap.png`` files (recursively).

    ``subdirs``: search only these folders under ``heatmaps_dir`` (the pipeline's ``by_cv`` and
    ``by_net``, leaving out colour renderings and figures); default: the whole tree.
    """
    root = Path(heatmaps_dir)
    if not root.is_dir():
        raise CompareInputError(f"{root}: heatmaps folder not found")
    index = HeatmapIndex(root=root)
    skipped: list[str] = []
    tops = [root] if subdirs is None else [root / d for d in subdirs if (root / d).is_dir()]
    for path in sorted(p for top in tops for p in top.rglob("*")):
        if not path.is_file() or not path.name.lower().endswith(layout.HEATMAP_SUFFIX):
            continue
        m = layout.BY_CV_HEATMAP_RE.match(path.name)
        if m:
            expr = expression_display(m["expr"])
            if expr is None:
                skipped.append(path.name)
                continue
            _register(index.by_cv, (m["net"], int(m["fold"]), expr), path)
            continue
        m = layout.BY_NET_HEATMAP_RE.match(path.name)
        if m:
            expr = expression_display(m["expr"])
            if expr is None:
                skipped.append(path.name)
                continue
            _register(index.by_net, (m["net"], expr), path)
    if skipped:
        log.warning("ignored %d heatmap(s) of other classes, e.g. %s", len(skipped), skipped[0])
    if not index.by_cv:
        where = "recursively" if subdirs is None else "in " + ", ".join(f"{d}/" for d in subdirs)
        raise CompareInputError(
            f"{root}: no per-fold heatmaps named <Net>_CV<k>_<Expression>_heatmap.png found "
            f"(searched {where})"
        )
    _check_grid(index)
    return index


def _check_grid(index: HeatmapIndex) -> None:
    """Warn about holes in the network x fold x expression grid (they become NaN cells)."""
    exprs = index.expressions
    for net in index.networks:
        for fold in index.folds(net):
            missing = [e for e in exprs if (net, fold, e) not in index.by_cv]
            if missing:
                log.warning("%s fold %d has no heatmap for %s", net, fold, ", ".join(missing))
    nets_cv = set(index.networks)
    extra = sorted({n for n, _ in index.by_net} - nets_cv)
    if extra:
        log.warning("by_net heatmaps without per-fold heatmaps are ignored: %s", ", ".join(extra))


def find_masks(masks_dir: str | os.PathLike, expressions) -> dict[str, Path]:
    """``{Expr: path}`` of ``<Expression>_gt.png`` for every expression needed; error names the file."""
    root = Path(masks_dir)
    if not root.is_dir():
        raise CompareInputError(f"{root}: masks folder not found")
    found: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        m = layout.EXPRESSION_MASK_RE.match(path.name)
        if m and path.is_file():
            expr = expression_display(m["expr"])
            if expr is not None:
                found.setdefault(expr, path)
    missing = [e for e in expressions if e not in found]
    if missing:
        expected = ", ".join(str(root / layout.expression_mask_name(e)) for e in missing)
        raise CompareInputError(f"missing Ekman mask(s): {expected}")
    return {e: found[e] for e in expressions}


def read_map(path: str | os.PathLike, what: str = "image") -> np.ndarray:
    """Read a heatmap or mask as a 2-D uint8 array.

    Grayscale files are returned as stored; RGB(A) files with identical channels (the published
    masks) give their first channel, other colour files are converted with ITU-R 601 luma.
    """
    path = Path(path)
    if not path.is_file():
        raise CompareInputError(f"{path}: {what} not found")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "P":
                im = im.convert("RGBA")
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                hi = 65535.0 if arr.max(initial=0) > 255 else 255.0
                arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
            elif im.mode == "F":
                raise CompareInputError(f"{path}: {what} is floating point; save it as 8-bit PNG")
            else:
                arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, CompareInputError):
            raise
        raise CompareInputError(f"{path}: unreadable {what} ({type(exc).__name__}: {exc})") from exc
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 3:
        rgb = arr[..., :3]
        if rgb.shape[-1] == 1 or (np.array_equal(rgb[..., 0], rgb[..., 1])
                                  and np.array_equal(rgb[..., 0], rgb[..., 2])):
            arr = rgb[..., 0]
        else:
            log.debug("%s: colour %s converted to luma", path, what)
            arr = np.asarray(Image.fromarray(rgb.astype(np.uint8)).convert("L"))
    if arr.ndim != 2 or arr.size == 0:
        raise CompareInputError(f"{path}: {what} has unusable shape {arr.shape}")
    return np.ascontiguousarray(arr.astype(np.uint8, copy=False))


def check_same_shape(heatmap: np.ndarray, mask: np.ndarray, heatmap_path, mask_path) -> None:
    if heatmap.shape != mask.shape:
        raise CompareInputError(
            f"shape mismatch: heatmap {heatmap_path} is {heatmap.shape[0]}x{heatmap.shape[1]} "
            f"(h x w) but mask {mask_path} is {mask.shape[0]}x{mask.shape[1]}; "
            "both must be in the same canonical face space"
        )


@dataclass
class PublishedData:
    """Everything the comparison needs, loaded into memory (uint8 arrays)."""

    networks: list[str]
    expressions: list[str]
    masks: dict[str, np.ndarray]  # Expr -> (H, W) uint8
    by_cv: dict[tuple[str, int, str], np.ndarray]  # (net, fold, Expr) -> (H, W) uint8
    by_net: dict[tuple[str, str], np.ndarray]  # (net, Expr) -> (H, W) uint8, published files only
    paths: dict[str, str] = field(default_factory=dict)  # key -> file, for messages/provenance


def load_published(heatmaps_dir, masks_dir, subdirs: Sequence[str] | None = None) -> PublishedData:
    """Index, read and validate (shapes, masks present) the published-layout inputs.

    ``subdirs``: as in :func:`find_heatmaps`.
    """
    index = find_heatmaps(heatmaps_dir, subdirs)
    exprs = index.expressions
    mask_paths = find_masks(masks_dir, exprs)
    masks = {e: read_map(p, "mask") for e, p in mask_paths.items()}
    by_cv: dict[tuple[str, int, str], np.ndarray] = {}
    for key, path in sorted(index.by_cv.items()):
        arr = read_map(path, "heatmap")
        check_same_shape(arr, masks[key[2]], path, mask_paths[key[2]])
        by_cv[key] = arr
    nets = set(index.networks)
    by_net: dict[tuple[str, str], np.ndarray] = {}
    for key, path in sorted(index.by_net.items()):
        if key[0] not in nets:
            continue
        arr = read_map(path, "heatmap")
        check_same_shape(arr, masks[key[1]], path, mask_paths[key[1]])
        by_net[key] = arr
    paths = {f"mask/{e}": str(p) for e, p in mask_paths.items()}
    return PublishedData(index.networks, exprs, masks, by_cv, by_net, paths)
