"""``fer-xai heatmaps``: standardized explanations and importance heatmaps (paper 4.2-4.3).

Reads ``<explain.out_dir>/<model>/fold<k>/explanations.npz`` for every model and fold of
``train.models`` x ``train.folds``, normalizes each LIME map by its max, warps it into the
canonical face space (``canonical``; one grid per face, reused for all its maps) and averages
the maps per (network, fold, expression), per (network, expression) and per expression. Writes
under ``heatmaps.out_dir`` (atomically):

* ``standardized/<model>/fold<k>.npz``: ``ids``, ``classes``, ``labels``, ``maps`` (N, 275, 224)
  uint8 = the warped ``map / max`` * 255, for analyses over images (bootstraps);
* ``by_cv/<Net>_CV<k>_<Expression>_heatmap.png``, ``by_net/<Net>_<Expression>_heatmap.png``,
  ``total/<Expression>_heatmap.png``: the published format (275 x 224 uint8, stretched 0..255);
* ``heatmaps.npz``: the float heatmaps (stretched to [0, 1]) with counts and pre-stretch ranges,
  the source of truth; ``color/``: colour-mapped PNGs; ``figures/``: grids expressions x
  networks (paper Figures 7-9); ``counts.csv`` (model, fold, expression, n); ``rejected.csv``;
  ``mean_face.png``: the mean of the explained faces warped the same way;
* on a prepared set with AU-region masks (the synthetic set): ``planted_truth.csv`` and
  ``planted/``: how Otsu(total heatmap) overlaps the mean warped AU-region mask per expression.

``metrics/heatmaps.json`` summarises counts, rejections and the planted-truth scores. Each
network's heatmaps are logged into its fold models' training runs (``heatmaps.log_to_mlflow``).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import click
import numpy as np
import pandas as pd
from tqdm import tqdm

from ..config import Params
from ..faces.canonical import CanonicalError, WarpRejected, for_study
from ..heatmaps.aggregate import HeatmapSums, stack_arrays, to_png
from ..heatmaps.figures import check_colormap, colorize, grid_figure
from ..heatmaps.planted import MaskMeans, planted_truth_table
from ..heatmaps.standardize import GridCache, standardize
from ..images import read_gray, write_png
from ..labels import DISPLAY_NAMES, EXPRESSIONS
from ..models.zoo import display_name
from ..outputs import staged_dir
from ..paths import metrics_path, resolve, write_json_atomic

log = logging.getLogger(__name__)

NPZ = "explanations.npz"
REJECTED_COLUMNS = ["model", "fold", "id", "reason", "detail"]


def explanation_path(params: Params, model_id: str, fold: int) -> Path:
    return resolve(params.explain.out_dir) / model_id / f"fold{fold}" / NPZ


def find_inputs(params: Params) -> list[tuple[str, int, Path]]:
    """(model, fold, path) fold-major, so the faces of a fold are warped once for all networks."""
    items, missing = [], []
    for k in params.train.folds:
        for m in params.train.models:
            p = explanation_path(params, m, k)
            (items if p.is_file() else missing).append((m, k, p))
    if missing:
        raise click.ClickException(
            "missing explanations (run `fer-xai explain --model M --fold K` or `dvc repro`): "
            + ", ".join(str(p) for _, _, p in missing))
    return items


def _load(path: Path, model: str, fold: int):
    from ..explain.store import load_explanations

    try:
        exp = load_explanations(path)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    if exp.model and (exp.model != model or exp.fold != fold):
        log.warning("%s says model %r fold %d, read as %s fold %d", path, exp.model, exp.fold, model, fold)
    return exp


def _prepared(params: Params):
    from ..prepared import load_prepared

    try:
        return load_prepared(resolve(params.prepare.out_dir))
    except (FileNotFoundError, ValueError) as exc:
        log.warning("no prepared set (%s): no planted truth and no mean face", exc)
        return None


def _write_heatmap_pngs(out: Path, sums: HeatmapSums, cmap: str) -> dict[str, np.ndarray]:
    """Published-format and colour PNGs of every non-empty heatmap; returns the total PNGs."""
    for (m, k, e), h in sums.by_cv().items():
        if h.n:
            stem = f"{display_name(m)}_CV{k}_{DISPLAY_NAMES[e]}"
            write_png(out / "by_cv" / f"{stem}_heatmap.png", to_png(h.values))
            write_png(out / "color" / "by_cv" / f"{stem}_color.png", colorize(h.values, cmap))
    for (m, e), h in sums.by_net().items():
        if h.n:
            stem = f"{display_name(m)}_{DISPLAY_NAMES[e]}"
            write_png(out / "by_net" / f"{stem}_heatmap.png", to_png(h.values))
            write_png(out / "color" / "by_net" / f"{stem}_color.png", colorize(h.values, cmap))
    totals = {}
    for e, h in sums.total().items():
        if h.n:
            totals[e] = to_png(h.values)
            write_png(out / "total" / f"{DISPLAY_NAMES[e]}_heatmap.png", totals[e])
            write_png(out / "color" / "total" / f"{DISPLAY_NAMES[e]}_color.png", colorize(h.values, cmap))
    return totals


def _write_figures(out: Path, sums: HeatmapSums, cmap: str) -> None:
    fig = out / "figures"
    fig.mkdir(parents=True, exist_ok=True)
    cols = [DISPLAY_NAMES[e] for e in EXPRESSIONS]
    tot = sums.total()
    grid_figure([[tot[e].values for e in EXPRESSIONS]], ["all networks"], cols, fig / "total.png",
                "Importance heatmaps per expression (all networks and folds)", cmap,
                [[tot[e].n for e in EXPRESSIONS]])
    net = sums.by_net()
    grid_figure([[net[(m, e)].values for e in EXPRESSIONS] for m in sums.models],
                [display_name(m) for m in sums.models], cols, fig / "by_net.png",
                "Importance heatmaps per network (all folds)", cmap,
                [[net[(m, e)].n for e in EXPRESSIONS] for m in sums.models])
    cv = sums.by_cv()
    for m in sums.models:
        grid_figure([[cv[(m, k, e)].values for e in EXPRESSIONS] for k in sums.folds],
                    [f"CV{k}" for k in sums.folds], cols, fig / f"by_cv_{display_name(m)}.png",
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


def run(params: Params) -> dict:
    hp = params.heatmaps
    try:
        check_colormap(hp.colormap)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    inputs = find_inputs(params)
    space = for_study(params)
    cache = GridCache(space)
    sums = HeatmapSums(space.shape, models=list(params.train.models), folds=list(params.train.folds))
    out = resolve(hp.out_dir)
    rejected: list[dict] = []
    faces: dict[str, tuple[np.ndarray, tuple[int, int], str]] = {}
    n_in = n_empty = n_folded = 0
    log.info("standardizing %d explanation files into the %dx%d canonical space (%s template, %s sampling)",
             len(inputs), space.width, space.height, space.source, params.canonical.interpolation)
    with staged_dir(out, params.output_guard("heatmaps")) as tmp:
        for model, fold, path in tqdm(inputs, desc="heatmaps", unit="file"):
            exp = _load(path, model, fold)
            std = standardize(exp, cache, params.canonical.interpolation)
            n_in += len(exp.ids)
            n_empty += std.n_empty
            n_folded += std.n_folded
            rejected += [{"model": model, "fold": fold, **r} for r in std.rejected]
            dest = tmp / "standardized" / model / f"fold{fold}.npz"
            dest.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(dest, ids=std.ids, classes=std.classes, labels=std.labels, maps=std.maps)
            sums.add(model, fold, std.classes, std.maps)
            for i in range(len(exp.ids)):
                faces.setdefault(str(exp.ids[i]), (exp.landmarks[i], exp.maps[i].shape[:2], str(exp.labels[i])))
            log.info("read %s: %d maps, %d standardized, %d rejected -> %s", path, len(exp.ids), len(std.ids),
                     len(std.rejected), dest.relative_to(tmp))
        if sums.ignored:
            log.warning("maps of classes outside the six expressions are not averaged: %s", dict(sums.ignored))
        if rejected:
            log.warning("%d map(s) of faces that cannot be warped are left out (%s), e.g. %s: %s; see %s",
                        len(rejected), dict(Counter(r["reason"] for r in rejected)), rejected[0]["id"],
                        rejected[0]["detail"], out / "rejected.csv")
        totals = _write_heatmap_pngs(tmp, sums, hp.colormap)
        log.info("wrote heatmap PNGs (by_cv/, by_net/, total/) and colour renderings (color/)")
        _write_figures(tmp, sums, hp.colormap)
        log.info("wrote figure grids (figures/)")
        np.savez_compressed(tmp / "heatmaps.npz", **stack_arrays(sums))
        pd.DataFrame(sums.count_rows(), columns=["model", "fold", "expression", "n"]).to_csv(
            tmp / "counts.csv", index=False)
        pd.DataFrame(rejected, columns=REJECTED_COLUMNS).to_csv(tmp / "rejected.csv", index=False)
        log.info("wrote heatmaps.npz, counts.csv, rejected.csv")

        planted = None
        prepared = _prepared(params) if faces else None
        if prepared is not None:
            masks, mean_face = _faces_and_masks(prepared, faces, cache, space.shape, hp.mean_face)
            if mean_face is not None:
                write_png(tmp / "mean_face.png", np.clip(np.rint(mean_face), 0, 255).astype(np.uint8))
            if masks is not None:
                planted = planted_truth_table(totals, masks, hp.planted_threshold)
                planted.to_csv(tmp / "planted_truth.csv", index=False)
                for e in EXPRESSIONS:
                    mean = masks.mean(e)
                    if mean is not None:
                        write_png(tmp / "planted" / f"{DISPLAY_NAMES[e]}_planted_mean.png", to_png(mean))
                        write_png(tmp / "planted" / f"{DISPLAY_NAMES[e]}_planted.png",
                                  np.where(mean >= hp.planted_threshold, 255, 0).astype(np.uint8))
            else:
                log.info("the prepared set has no AU-region masks: no planted truth")
        summary = _summary(sums, n_in, rejected, n_empty, n_folded, cache, planted, params)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_json_atomic(metrics_path("heatmaps"), summary)
    log.info("%d maps -> %d standardized (%d rejected faces, %d grids built, %d reused) -> %s",
             n_in, summary["n_standardized"], len(rejected), cache.built, cache.reused, out)
    if planted is not None:
        for r in planted.itertuples():
            log.info("planted truth %-9s precision %.3f recall %.3f IoU %.3f (%d images)", r.expression,
                     r.precision, r.recall, r.iou, r.n_images)
    return summary


def _r(x) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def _summary(sums, n_in, rejected, n_empty, n_folded, cache, planted, params) -> dict:
    counts = pd.DataFrame(sums.count_rows())
    out = {
        "n_explanations": int(n_in),
        "n_standardized": int(counts["n"].sum()) + int(sum(sums.ignored.values())),
        "n_rejected": len(rejected),
        "rejected_by_reason": dict(Counter(r["reason"] for r in rejected)),
        "n_empty_maps": int(n_empty),
        "n_tolerated_folds": int(n_folded),
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


# ------------------------------------------------------------------------------------- MLflow


def _training_run_id(params: Params, model: str, fold: int) -> str:
    """The fold model's training run: the registry's, else the one its explanations recorded."""
    from ..registry import fold_run_id

    try:
        return fold_run_id(model, fold)
    except Exception as exc:  # MlflowException / RestException when the name or alias is unknown
        summary = explanation_path(params, model, fold).with_name("summary.json")
        if summary.is_file():
            run_id = json.loads(summary.read_text()).get("run_id")
            if run_id:
                return str(run_id)
        raise LookupError(f"no registered model fer-{model}@fold{fold} ({type(exc).__name__})") from exc


def log_to_training_runs(params: Params) -> dict[str, str]:
    """Log each fold's heatmaps (and its network's pooled ones) into its training run."""
    from mlflow.tracking import MlflowClient

    from ..tracking import configure

    out = resolve(params.heatmaps.out_dir)
    configure(params.tracking.experiment)
    client = MlflowClient()
    logged: dict[str, str] = {}
    for model in params.train.models:
        net = display_name(model)
        for fold in params.train.folds:
            try:
                run_id = _training_run_id(params, model, fold)
            except LookupError as exc:
                log.warning("%s fold %d: heatmaps not logged to a training run: %s", model, fold, exc)
                continue
            with tempfile.TemporaryDirectory() as td:
                stage = Path(td)
                picks = [
                    *(out / "by_cv").glob(f"{net}_CV{fold}_*_heatmap.png"),
                    *(out / "color" / "by_cv").glob(f"{net}_CV{fold}_*_color.png"),
                    *(out / "by_net").glob(f"{net}_*_heatmap.png"),
                    *(out / "color" / "by_net").glob(f"{net}_*_color.png"),
                    *[p for p in (out / "figures" / f"by_cv_{net}.png",) if p.is_file()],
                ]
                for p in picks:
                    dest = stage / p.parent.relative_to(out) / p.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, dest)
                try:
                    client.log_artifacts(run_id, str(stage), artifact_path="heatmaps")
                except Exception as exc:  # a deleted run, an unreachable store
                    log.warning("%s fold %d: could not log heatmaps to run %s: %s", model, fold, run_id, exc)
                    continue
            logged[f"{model}/fold{fold}"] = run_id
            log.info("logged %d heatmap files of %s fold %d to training run %s", len(picks), model, fold, run_id)
    return logged


def log_stage_run(params: Params, summary: dict) -> None:
    import mlflow

    from ..tracking import flatten, stage_run

    out = resolve(params.heatmaps.out_dir)
    with stage_run("heatmaps", params.tracking.experiment,
                   params={"canonical": params.canonical.model_dump(), "heatmaps": params.heatmaps.model_dump(),
                           "models": list(params.train.models), "folds": list(params.train.folds)}):
        metrics = {k: v for k, v in flatten(summary).items() if isinstance(v, (int, float)) and v is not None}
        mlflow.log_metrics({k.replace("planted_truth.", "planted."): float(v) for k, v in metrics.items()})
        for name in ("counts.csv", "rejected.csv", "planted_truth.csv", "summary.json", "mean_face.png"):
            if (out / name).is_file():
                mlflow.log_artifact(str(out / name), artifact_path="heatmaps")
        for sub in ("figures", "total", "planted"):
            if (out / sub).is_dir():
                mlflow.log_artifacts(str(out / sub), artifact_path=f"heatmaps/{sub}")


@click.command("heatmaps")
@click.option("--no-mlflow", is_flag=True, help="Do not log to MLflow (training runs or a stage run).")
@click.pass_obj
def cli(obj, no_mlflow: bool) -> None:
    """Warp explanations into canonical space and average them into heatmaps (by fold, network, total)."""
    params: Params = obj.params
    try:
        summary = run(params)
    except CanonicalError as exc:  # a bad template: a clear message, not a traceback
        raise click.ClickException(str(exc)) from exc
    if params.heatmaps.log_to_mlflow and not no_mlflow:
        try:
            log_to_training_runs(params)
            log_stage_run(params, summary)
        except Exception as exc:  # tracking is a record, not a result: never lose the heatmaps over it
            log.warning("MLflow logging failed: %s", exc)
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "per_model"}, indent=1))
