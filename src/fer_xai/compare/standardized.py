"""The pipeline's per-image standardized maps, read on demand.

The heatmaps stage (``fer-xai heatmaps``) writes, besides the published-layout PNGs
(``heatmaps/by_cv``, ``heatmaps/by_net``), the per-image standardized maps
``heatmaps/standardized/<model>/fold<k>.npz`` (``ids`` (N,) str, ``classes`` (N,) str lowercase
explained class, ``maps`` (N, 275, 224) uint8); :func:`load_standardized` indexes them for the
bootstrap over explained images (:mod:`.pipeline`).
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import layout
from ..labels import DISPLAY_NAMES, EXPRESSIONS, normalize_label
from .published import CompareInputError

log = logging.getLogger(__name__)


@dataclass
class StandardizedMaps:
    """Per-image canonical maps by (network display name, fold, Expression), read on demand.

    :func:`load_standardized` reads only the class labels and the maps' shape; :meth:`stack`
    reads one network's fold files when first asked for it and keeps only that network in memory
    (the study's explanations are gigabytes as uint8).
    """

    root: Path
    model_ids: dict[str, str] = field(default_factory=dict)  # display name -> model id (folder)
    files: dict[tuple[str, int], Path] = field(default_factory=dict)
    counts: dict[tuple[str, int, str], int] = field(default_factory=dict)
    _net: str | None = field(default=None, repr=False)
    _cache: dict[tuple[int, str], np.ndarray] = field(default_factory=dict, repr=False)

    def n_images(self, net: str, fold: int, expr: str) -> int:
        return self.counts.get((net, fold, expr), 0)

    def stack(self, net: str, fold: int, expr: str) -> np.ndarray:
        """(n, H, W) uint8 maps of the images of ``fold`` explained as ``expr``."""
        if self._net != net:
            self._cache = {}
            for (n, k), path in sorted(self.files.items()):
                if n == net:
                    maps, canon = _read_maps(path)
                    for e in EXPRESSIONS:
                        sel = canon == e
                        if sel.any():
                            self._cache[(k, DISPLAY_NAMES[e])] = np.ascontiguousarray(maps[sel])
            self._net = net
        try:
            return self._cache[(fold, expr)]
        except KeyError:
            raise KeyError(f"no per-image maps for {net} fold {fold} {expr}") from None


def _npz_member_header(path: Path, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array of an ``.npz`` without reading its data."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(f)
    return tuple(shape), dtype


def _read_maps(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(maps, canonical class ids) of one fold file (validated by :func:`load_standardized`)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            maps = np.asarray(z["maps"])
            classes = np.asarray(z["classes"]).astype(str)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise CompareInputError(f"{path}: unreadable standardized maps ({type(exc).__name__}: {exc})") from exc
    return maps, np.array([normalize_label(c) for c in classes], dtype=object)


def display_name(model_dir: str) -> str:
    """Network display name for a model id (``silnet`` -> ``SilNet``); the folder name if unknown."""
    from ..models.zoo import UnknownNetworkError, network

    try:
        return network(model_dir).display_name
    except UnknownNetworkError:
        log.warning("standardized maps of %r: not a network of the zoo; using the folder name", model_dir)
        return model_dir


def load_standardized(standardized_dir: str | os.PathLike, shape: tuple[int, int] | None = None,
                      networks: Sequence[str] | None = None) -> StandardizedMaps:
    """Read ``<dir>/<model>/fold<k>.npz``; errors name the file and what is wrong with it.

    ``shape``: the mask shape every map must have. ``networks``: keep only these display names.
    """
    root = Path(standardized_dir)
    out = StandardizedMaps(root=root)
    if not root.is_dir():
        return out
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        net = display_name(model_dir.name)
        if networks is not None and net not in networks:
            log.warning("%s: no by_cv heatmaps for %s; its per-image maps are not used", model_dir, net)
            continue
        out.model_ids[net] = model_dir.name
        for path in sorted(model_dir.glob("fold*.npz")):
            m = layout.STANDARDIZED_FILE_RE.match(path.name)
            if not m:
                continue
            fold = int(m["fold"])
            try:
                with np.load(path, allow_pickle=False) as z:
                    missing = [k for k in ("classes", "maps") if k not in z.files]
                    if missing:
                        raise CompareInputError(f"{path}: missing array(s) {', '.join(missing)} "
                                                f"(has {', '.join(z.files) or 'none'})")
                    classes = np.asarray(z["classes"]).astype(str)
                mshape, dtype = _npz_member_header(path, "maps")
            except CompareInputError:
                raise
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
                raise CompareInputError(f"{path}: unreadable standardized maps ({type(exc).__name__}: {exc})") from exc
            if len(mshape) != 3 or classes.shape != (mshape[0],):
                raise CompareInputError(f"{path}: maps {mshape} and classes {classes.shape} do not "
                                        "form (N, H, W) maps with N class labels")
            if dtype != np.uint8:
                raise CompareInputError(f"{path}: maps must be uint8 (0..255), got {dtype}")
            if shape is not None and mshape[0] and mshape[1:] != tuple(shape):
                raise CompareInputError(
                    f"shape mismatch: {path} maps are {mshape[1]}x{mshape[2]} (h x w) but the "
                    f"Ekman masks are {shape[0]}x{shape[1]}")
            canon = np.array([normalize_label(c) for c in classes], dtype=object)
            unknown = sorted({c for c, k in zip(classes, canon) if k not in EXPRESSIONS})
            if unknown:
                log.warning("%s: ignoring %d map(s) of classes %s", path, int(np.isin(classes, unknown).sum()),
                            ", ".join(unknown))
            for e in EXPRESSIONS:
                n = int((canon == e).sum())
                if n:
                    out.counts[(net, fold, DISPLAY_NAMES[e])] = n
            out.files[(net, fold)] = path
    if out.counts:
        log.info("per-image maps: %d networks, %d fold files, %d images", len(out.model_ids),
                 len(out.files), sum(out.counts.values()))
    return out
