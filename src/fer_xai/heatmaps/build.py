"""The heatmaps folder: standardized explanations and importance heatmaps (paper 4.2-4.3).

Reads ``<explain.out_dir>/<model>/fold<k>/explanations.npz`` for every model and fold of
``train.models`` x ``train.folds``, normalizes each LIME map by its max, warps it into the
canonical face space (``canonical``; one grid per face, reused for all its maps) and averages
the maps per (network, fold, expression), per (network, expression) and per expression. Writes
under ``heatmaps.out_dir`` (atomically; names in :mod:`fer_xai.layout`):

* ``standardized/<model>/fold<k>.npz``: ``ids``, ``classes``, ``labels``, ``maps`` (N, 275, 224)
  uint8 = the warped ``map / max`` * 255, for analyses over images (bootstraps);
* ``by_cv/<Net>_CV<k>_<Expression>_heatmap.png``, ``by_net/<Net>_<Expression>_heatmap.png``,
  ``total/<Expression>_heatmap.png``: the published format (275 x 224 uint8, stretched 0..255);
* ``heatmaps.npz``: the float heatmaps (stretched to [0, 1]) with counts and pre-stretch ranges,
  the source of truth; ``color/``: colour-mapped PNGs; ``figures/``: grids expressions x
  networks (paper Figures 7-9); ``counts.csv`` (model, fold, expression, n); ``rejected.csv``;
  ``mean_face.png``: the mean of the explained faces warped the same way;
* on a prepared set with AU-region masks (the synthetic set): ``planted_truth.csv`` and
  ``planted/``: how Otsu(total heatmap) overlaps the mean warped AU-region mask per expression;
* ``summary.json``: counts, rejections and the planted-truth scores.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import layout
from ..config import Params
from ..errors import FerXaiError
from ..faces.canonical import CanonicalSpace, WarpRejected, for_study
from ..images import read_gray, write_png
from ..labels import DISPLAY_NAMES, EXPRESSIONS
from ..models.zoo import display_name
from ..outputs import staged_dir
from .aggregate import HeatmapSums, stack_arrays, to_png
from .figures import colorize, grid_figure
from .planted import MaskMeans, planted_truth_table
from .standardize import GridCache, standardize

log = logging.getLogger(__name__)

REJECTED_COLUMNS = ["model", "fold", "id", "reason", "detail"]


class HeatmapsInputError(FerXaiError):
    """Explanations that are missing or unreadable; the message names the files."""


@dataclass
class Standardization:
    """What standardizing every explanation file gave, besides the sums and the npz files."""

    n_in: int = 0
    n_empty: int = 0
    n_folded: int = 0
    rejected: list[dict] = field(default_factory=list)
    # face id -> (landmarks, map shape, true label) of its first explanation
    faces: dict[str, tuple[np.ndarray, tuple[int, int], str]] = field(default_factory=dict)


def find_inputs(params: Params) -> list[tuple[str, int, Path]]:
    """(model, fold, path) fold-major, so the faces of a fold are warped once for all networks."""
    items, missing = [], []
    for k in params.train.folds:
        for m in params.train.models:
            p = layout.explanations_file(params, m, k)
            (items if p.is_file() else missing).append((m, k, p))
    if missing:
        raise HeatmapsInputError(
            "missing explanations (run `fer-xai explain --model M --fold K` or `dvc repro`): "
            + ", ".join(str(p) for _, _, p in missing))
    return items


def _load(path: Path, model: str, fold: int):
    from ..explain.store import load_explanations

    try:
        exp = load_explanations(path)
    except (ValueError, FileNotFoundError) as exc:
        raise HeatmapsInputError(str(exc)) from exc
    if exp.model and (exp.model != model or exp.fold != fold):
        log.warning("%s says model %r fold %d, read as %s fold %d", path, exp.model, exp.fold, model, fold)
    return exp


def _prepared(params: Params):
    from ..prepared import load_prepared

    try:
        return load_prepared(layout.prepared_dir(params))
    except (FileNotFoundError, ValueError) as exc:
        log.warning("no prepared set (%s): no planted truth and no mean face", exc)
        return None


def _standardize_all(inputs: list[tuple[str, int, Path]], cache: GridCache, interpolation: str,
                     sums: HeatmapSums, tmp: Path) -> Standardization:
    """Warp every input file into ``tmp``'s standardized/ and add its maps to ``sums``."""
    st = Standardization()
    for model, fold, path in tqdm(inputs, desc="heatmaps", unit="file"):
        exp = _load(path, model, fold)
        std = standardize(exp, cache, interpolation)
        st.n_in += len(exp.ids)
        st.n_empty += std.n_empty
        st.n_folded += std.n_folded
        st.rejected += [{"model": model, "fold": fold, **r} for r in std.rejected]
        dest = layout.standardized_file(tmp / layout.STANDARDIZED, model, fold)
        dest.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(dest, ids=std.ids, classes=std.classes, labels=std.labels, maps=std.maps)
        sums.add(model, fold, std.classes, std.maps)
        for i in range(len(exp.ids)):
            st.faces.setdefault(str(exp.ids[i]), (exp.landmarks[i], exp.maps[i].shape[:2], str(exp.labels[i])))
        log.info("read %s: %d maps, %d standardized, %d rejected -> %s", path, len(exp.ids), len(std.ids),
                 len(std.rejected), dest.relative_to(tmp))
    return st


def _write_heatmap_pngs(out: Path, sums: HeatmapSums, cmap: str) -> dict[str, np.ndarray]:
    """Published-format and colour PNGs of every non-empty heatmap; returns the total PNGs."""
    color = out / layout.COLOR
    for (m, k, e), h in sums.by_cv().items():
        if h.n:
            net, expr = display_name(m), DISPLAY_NAMES[e]
            write_png(out / layout.BY_CV / layout.by_cv_name(net, k, expr), to_png(h.values))
            write_png(color / layout.BY_CV / layout.by_cv_name(net, k, expr, layout.COLORED), colorize(h.values, cmap))
    for (m, e), h in sums.by_net().items():
        if h.n:
            net, expr = display_name(m), DISPLAY_NAMES[e]
            write_png(out / layout.BY_NET / layout.by_net_name(net, expr), to_png(h.values))
            write_png(color / layout.BY_NET / layout.by_net_name(net, expr, layout.COLORED), colorize(h.values, cmap))
    totals = {}
    for e, h in sums.total().items():
        if h.n:
            totals[e] = to_png(h.values)
            write_png(out / layout.TOTAL / layout.total_name(DISPLAY_NAMES[e]), totals[e])
            write_png(color / layout.TOTAL / layout.total_name(DISPLAY_NAMES[e], layout.COLORED),
                      colorize(h.values, cmap))
    return totals


def _write_figures(out: Path, sums: HeatmapSums, cmap: str) -> None:
    fig = out / layout.FIGURES
    fig.mkdir(parents=True, exist_ok=True)
    cols = [DISPLAY_NAMES[e] for e in EXPRESSIONS]
    tot = sums.total()
    grid_figure([[tot[e].values for e in EXPRESSIONS]], ["all networks"], cols, fig / layout.FIGURE_TOTAL,
                "Importance heatmaps per expression (all networks and folds)", cmap,
                [[tot[e].n for e in EXPRESSIONS]])
    net = sums.by_net()
    grid_figure([[net[(m, e)].values for e in EXPRESSIONS] for m in sums.models],
                [display_name(m) for m in sums.models], cols, fig / layout.FIGURE_BY_NET,
                "Importance heatmaps per network (all folds)", cmap,
                [[net[(m, e)].n for e in EXPRESSIONS] for m in sums.models])
    cv = sums.by_cv()
    for m in sums.models:
        grid_figure([[cv[(m, k, e)].values for e in EXPRESSIONS] for k in sums.folds],
                    [f"CV{k}" for k in sums.folds], cols, fig / layout.figure_by_cv(display_name(m)),
                    f"{display_name(m)}: importance heatmaps per fold", cmap,
                    [[cv[(m, k, e)].n for e in EXPRESSIONS] for k in sums.folds])


def _faces_and_masks(prepared, faces: dict[str, tuple[np.ndarray, tuple[int, int], str]], cache: GridCache,
                     shape: tuple[int, int], want_face: bool):
    """Warp each explained face's AU-region mask (nearest) and photo (linear) with its grid."""
    masks = MaskMeans(shape)
    face_sum, n_faces = np.zeros(shape, np.float64), 0
    known = set(prepared.manifest["id"].astype(str))
    unknown = [i for i in faces if i not in known]
    if unknown:
        log.warning("%d explained image(s) are not in %s (e.g. %s): no mask or face for them; rerun "
                    "`fer-xai prepare`?", len(unknown), prepared.root, unknown[0])
    rows = prepared.rows([i for i in faces if i in known])
    if not len(rows):
        return None, None
    has_masks = rows["mask"].astype(str).str.len().gt(0).any()
    if not has_masks and not want_face:
        return None, None
    for row in tqdm(rows.itertuples(index=False), total=len(rows), desc="masks and faces", unit="face"):
        landmarks, src_shape, label = faces[row.id]
        try:
            grid = cache.get(row.id, landmarks, src_shape)
        except WarpRejected:
            continue
        if has_masks and isinstance(row.mask, str) and row.mask:
            m = read_gray(prepared.root / row.mask)
            masks.add(label, grid.rescaled(m.shape).apply(m, "nearest") > 127)
        if want_face:
            img = read_gray(prepared.root / row.image)
            face_sum += grid.rescaled(img.shape).apply(img.astype(np.float32), "linear")
            n_faces += 1
    mean_face = (face_sum / n_faces) if n_faces else None
    return (masks if has_masks else None), mean_face


def _write_planted(params: Params, tmp: Path, faces: dict, cache: GridCache, space: CanonicalSpace,
                   totals: dict[str, np.ndarray]) -> pd.DataFrame | None:
    """The mean face and, where the prepared set has AU-region masks, the planted truth."""
    hp = params.heatmaps
    prepared = _prepared(params) if faces else None
    if prepared is None:
        return None
    masks, mean_face = _faces_and_masks(prepared, faces, cache, space.shape, hp.mean_face)
    if mean_face is not None:
        write_png(tmp / layout.MEAN_FACE, np.clip(np.rint(mean_face), 0, 255).astype(np.uint8))
    if masks is None:
        log.info("the prepared set has no AU-region masks: no planted truth")
        return None
    planted = planted_truth_table(totals, masks, hp.planted_threshold)
    planted.to_csv(tmp / layout.PLANTED_TRUTH, index=False)
    for e in EXPRESSIONS:
        mean = masks.mean(e)
        if mean is not None:
            write_png(tmp / layout.PLANTED / layout.planted_mean_name(DISPLAY_NAMES[e]), to_png(mean))
            write_png(tmp / layout.PLANTED / layout.planted_name(DISPLAY_NAMES[e]),
                      np.where(mean >= hp.planted_threshold, 255, 0).astype(np.uint8))
    return planted


def build_heatmaps(params: Params) -> tuple[dict, pd.DataFrame | None]:
    """Write the heatmaps folder; returns its summary and the planted-truth table (None
    without AU-region masks). The colour map must have passed ``figures.check_colormap``."""
    hp = params.heatmaps
    inputs = find_inputs(params)
    space = for_study(params)
    cache = GridCache(space)
    sums = HeatmapSums(space.shape, models=list(params.train.models), folds=list(params.train.folds))
    out = layout.heatmaps_dir(params)
    log.info("standardizing %d explanation files into the %dx%d canonical space (%s template, %s sampling)",
             len(inputs), space.width, space.height, space.source, params.canonical.interpolation)
    with staged_dir(out, params.output_guard("heatmaps")) as tmp:
        st = _standardize_all(inputs, cache, params.canonical.interpolation, sums, tmp)
        rejected = st.rejected
        if sums.ignored:
            log.warning("maps of classes outside the six expressions are not averaged: %s", dict(sums.ignored))
        if rejected:
            log.warning("%d map(s) of faces that cannot be warped are left out (%s), e.g. %s: %s; see %s",
                        len(rejected), dict(Counter(r["reason"] for r in rejected)), rejected[0]["id"],
                        rejected[0]["detail"], out / layout.HEATMAPS_REJECTED)
        totals = _write_heatmap_pngs(tmp, sums, hp.colormap)
        log.info("wrote heatmap PNGs (by_cv/, by_net/, total/) and colour renderings (color/)")
        _write_figures(tmp, sums, hp.colormap)
        log.info("wrote figure grids (figures/)")
        np.savez_compressed(tmp / layout.HEATMAPS_NPZ, **stack_arrays(sums))
        pd.DataFrame(sums.count_rows(), columns=["model", "fold", "expression", "n"]).to_csv(
            tmp / layout.COUNTS, index=False)
        pd.DataFrame(rejected, columns=REJECTED_COLUMNS).to_csv(tmp / layout.HEATMAPS_REJECTED, index=False)
        log.info("wrote heatmaps.npz, counts.csv, rejected.csv")
        planted = _write_planted(params, tmp, st.faces, cache, space, totals)
        summary = _summary(sums, st, cache, planted, params)
        (tmp / layout.HEATMAPS_SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary, planted


def _r(x) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def _summary(sums: HeatmapSums, st: Standardization, cache: GridCache, planted: pd.DataFrame | None,
             params: Params) -> dict:
    counts = pd.DataFrame(sums.count_rows())
    out = {
        "n_explanations": int(st.n_in),
        "n_standardized": int(counts["n"].sum()) + int(sum(sums.ignored.values())),
        "n_rejected": len(st.rejected),
        "rejected_by_reason": dict(Counter(r["reason"] for r in st.rejected)),
        "n_empty_maps": int(st.n_empty),
        "n_tolerated_folds": int(st.n_folded),
        "grids_built": int(cache.built),
        "grids_reused": int(cache.reused),
        "per_model": {m: int(counts.loc[counts["model"] == m, "n"].sum()) for m in sums.models},
        "template": params.canonical.template,
        "planted_truth": None,
    }
    if planted is not None:
        pt = {r.expression: {"precision": _r(r.precision), "recall": _r(r.recall), "iou": _r(r.iou), "f1": _r(r.f1)}
              for r in planted.itertuples()}
        pt["mean"] = {k: _r(planted[k].mean()) for k in ("precision", "recall", "iou", "f1")}
        out["planted_truth"] = pt
    return out
