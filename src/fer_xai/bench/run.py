"""``fer-xai bench``: the explainer bench over the pipeline's folders, written to ``bench.out_dir``.

Reads, per method (the paper's LIME and ``explain.methods_enabled``, or ``bench.methods``), the
heatmaps and compare folders (:mod:`.canonical`), and probes the registered models of
``bench.fold`` on the correctly classified faces LIME explained there (:mod:`.probes`). Writes
(names in :mod:`fer_xai.layout`): the method x expression table, per-face causal and curve
tables, sanity, cost, chance, specificity and agreement tables, a figure of every method's total
heatmaps, ``summary.json``; the headline numbers also go to ``metrics/bench.json``.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd

from .. import layout
from ..config import Params
from ..errors import FerXaiError
from ..labels import EXPRESSIONS
from ..outputs import staged_dir
from . import canonical, sanity
from .causal import causal_share, verdict
from .probes import Faces, ProbeSettings, probe_model

log = logging.getLogger(__name__)


class BenchInputError(FerXaiError):
    """A method or network the bench cannot read; the message names the folder or file."""


def bench_methods(params: Params) -> list[str]:
    """``bench.methods``, else the paper's LIME and ``explain.methods_enabled``."""
    if params.bench.methods is not None:
        return list(params.bench.methods)
    return [canonical.PAPER, *getattr(params.explain, "methods_enabled", ())]


def probe_settings(params: Params) -> ProbeSettings:
    b = params.bench
    return ProbeSettings(seed=b.seed, explain_seed=params.explain.seed, top_fraction=b.top_fraction,
                         curve_steps=b.curve_steps, curve_fill=b.curve_fill, sanity_images=b.sanity_images,
                         sanity_steps=b.sanity_steps, batch_size=b.batch_size)


def select_faces(params: Params, model_id: str, fold: int, size: int) -> Faces | None:
    """Up to ``bench.images_per_class`` faces per class that LIME explained for (model, fold) and the
    model classified correctly (``bench.correct_only``), at ``size`` px, with neutral twins and
    planted regions where present."""
    from ..explain.store import load_explanations
    from ..images import read_gray
    from ..prepared import load_prepared
    from .regions import resize_mask

    path = layout.explanations_file(params, model_id, fold)
    if not path.is_file():
        log.warning("%s: no explanations; %s fold %d is not probed", path, model_id, fold)
        return None
    exp = load_explanations(path)
    ids, classes, labels = [], [], []
    for e in EXPRESSIONS:
        hit = [i for i in range(len(exp))
               if exp.classes[i] == e and (exp.labels[i] == e or not params.bench.correct_only)]
        chosen = hit[: params.bench.images_per_class]
        ids += [str(exp.ids[i]) for i in chosen]
        classes += [EXPRESSIONS.index(e)] * len(chosen)
        labels += [str(exp.labels[i]) for i in chosen]
    if not ids:
        return None
    ps = load_prepared(layout.prepared_dir(params))
    images, _ = ps.faces(ids, size)
    try:
        neutrals = ps.neutrals(ids, size).astype(np.float32)
    except KeyError:
        neutrals = None
    rows = ps.rows(ids)
    planted = None
    if all(isinstance(m, str) and m for m in rows["mask"]):
        planted = np.stack([resize_mask(read_gray(ps.root / m) > 127, size) for m in rows["mask"]])
    return Faces(ids, images.astype(np.float32), np.asarray(classes, int), neutrals, planted, labels)


def explain_functions(params: Params, methods: list[str]) -> dict:
    """``{method: explain(model, images, classes, seed, ids) -> signed maps}``."""
    from ..explain.methods import get_explainer

    out = {}
    for m in methods:
        try:
            ex = get_explainer(m, params.explain, params.bench.batch_size)
        except KeyError as exc:
            raise BenchInputError(f"bench: {exc.args[0]}") from exc

        def fn(model, images, classes, seed, ids, _ex=ex):
            return _ex.explain(model, images, classes, seed, image_ids=list(ids)).maps

        out[m] = fn
    return out


def stored_maps(params: Params, method: str, model_id: str, fold: int, ids: list[str]) -> tuple | None:
    """(signed maps of ``ids``, seconds per image) from the method's explain folder, or None when
    any is missing: the explain stages made them with the same seed per image id, so the bench
    reuses them instead of explaining the faces again (only the randomised models are new)."""
    from ..explain.store import load_explanations

    path = layout.explanations_file(canonical.method_params(params, method), model_id, fold)
    if not path.is_file():
        return None
    exp = load_explanations(path)
    where = {str(i): k for k, i in enumerate(exp.ids)}
    if any(i not in where for i in ids):
        return None
    rows = [where[i] for i in ids]
    if "signed_maps" in exp.extra:
        maps = np.asarray(exp.extra["signed_maps"], np.float32)[rows]
    else:  # LIME's file: the signed ridge weight of each superpixel
        maps = np.stack([np.nan_to_num(exp.weights[k])[exp.segments[k]] for k in rows]).astype(np.float32)
    summary = path.parent / layout.EXPLAIN_SUMMARY
    seconds = float("nan")
    if summary.is_file():
        seconds = float(json.loads(summary.read_text()).get("seconds_per_image", float("nan")))
    return maps, seconds


def probe_all(params: Params, methods: list[str], load_model=None) -> dict[str, pd.DataFrame]:
    """The model part for every network of ``bench.models`` on ``bench.fold``."""
    from ..explain.predictor import GraphPredictor

    if load_model is None:
        from ..registry import load_fold_model as load_model
    fold = params.bench.fold
    fns = explain_functions(params, methods)
    tables: dict[str, list[pd.DataFrame]] = {}
    for model_id in params.bench.models or params.train.models:
        try:
            model = load_model(model_id, fold)
        except Exception as exc:  # MlflowException (no such alias), download or Keras errors
            from ..registry import fold_model_uri

            raise BenchInputError(f"{fold_model_uri(model_id, fold)}: cannot load the fold model bench.fold={fold} "
                                  f"probes ({exc.__class__.__name__}: {exc}); train it first, or set bench.fold / "
                                  "bench.models") from exc
        predict = GraphPredictor(model)
        faces = select_faces(params, model_id, fold, predict.input_size)
        if faces is None:
            continue
        log.info("bench %s fold %d: %d faces, methods %s", model_id, fold, len(faces.ids), ", ".join(methods))
        stored = {m: got for m in methods if (got := stored_maps(params, m, model_id, fold, faces.ids)) is not None}
        for name, df in probe_model(model, predict, faces, fns, probe_settings(params), stored=stored).items():
            tables.setdefault(name, []).append(df.assign(model=model_id, fold=fold))
        import keras

        keras.backend.clear_session()
    return {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}


# ------------------------------------------------------------------------------ summaries


def _mean(df: pd.DataFrame, col: str) -> float:
    return float(df[col].mean()) if len(df) and col in df else float("nan")


def methods_expressions(planted: pd.DataFrame, probes: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The headline table: per method and expression, planted truth and the causal drops."""
    causal = probes.get("causal", pd.DataFrame())
    keys = sorted({(m, e) for m, e in zip(planted.get("method", []), planted.get("expression", []))}
                  | {(m, e) for m, e in zip(causal.get("method", []), causal.get("expression", []))},
                  key=lambda k: (k[0] != canonical.PAPER, k[0], EXPRESSIONS.index(k[1])))
    rows = []
    for m, e in keys:
        p = planted[(planted["method"] == m) & (planted["expression"] == e)] if len(planted) else planted
        c = causal[(causal["method"] == m) & (causal["expression"] == e)] if len(causal) else causal
        rows.append({"method": m, "expression": e,
                     **{f"planted_{k}": _mean(p, k) for k in ("precision", "recall", "iou", "relevance_mass",
                                                               "area_share")},
                     **{k: _mean(c, k) for k in ("drop_otsu", "drop_top_fraction", "drop_planted", "drop_random",
                                                 "otsu_in_planted")},
                     "n_faces": len(c)})
        r = rows[-1]
        # Judged on the swapped faces themselves: the Otsu region's share inside their own AU regions.
        r["causal_share"] = causal_share(r["drop_otsu"], r["drop_planted"], r["drop_random"])
        r["verdict"] = (verdict(r["drop_otsu"], r["drop_planted"], r["drop_random"], r["otsu_in_planted"])
                        if len(c) else "")
    return pd.DataFrame(rows)


def methods_summary(params: Params, methods: list[str], table: pd.DataFrame, probes: dict[str, pd.DataFrame],
                    agreement: pd.DataFrame, specificity: pd.DataFrame) -> pd.DataFrame:
    """One row per method: every headline number (means over expressions, networks and faces)."""
    curves, sanity_rows, cost = (probes.get(k, pd.DataFrame()) for k in ("curves", "sanity", "cost"))
    rows = []
    for m in methods:
        t = table[table["method"] == m] if len(table) else table
        cv = curves[curves["method"] == m] if len(curves) else curves
        row = {"method": m, **{k: _mean(t, k) for k in ("planted_precision", "planted_iou", "drop_otsu",
                                                         "drop_planted", "drop_random")}}
        row["deletion_auc"], row["insertion_auc"] = _mean(cv, "deletion_auc"), _mean(cv, "insertion_auc")
        last = pd.DataFrame()
        if len(sanity_rows):
            s = sanity_rows[sanity_rows["method"] == m]
            last = s[s["randomized_layers"] == s["total_layers"]]
        row["sanity_spearman"], row["sanity_ssim"] = _mean(last, "spearman"), _mean(last, "ssim")
        row["sanity_pass"] = (sanity.passes([{"spearman": row["sanity_spearman"], "ssim": row["sanity_ssim"]}],
                                            params.bench.sanity_max_spearman) if len(last) else None)
        sp = specificity[specificity["method"] == m] if len(specificity) else specificity
        row["specific_expressions"] = int(sp["specific"].sum()) if len(sp) else None
        a = agreement[agreement["method"] == m] if len(agreement) else agreement
        for k in ("kendall_tau", "best_agreement", "worst_agreement", "dendrogram_correlation"):
            row[k] = _mean(a, k)  # NaN for LIME, the reference
        c = cost[cost["method"] == m] if len(cost) else cost
        row["seconds_per_image"] = _mean(c, "seconds_per_image")
        rows.append(row)
    if len(curves):
        r = curves[curves["method"] == "random"]
        rows.append({"method": "random", "deletion_auc": _mean(r, "deletion_auc"),
                     "insertion_auc": _mean(r, "insertion_auc")})
    return pd.DataFrame(rows)


def per_network(probes: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per method and network: mean causal drops, deletion/insertion AUCs and the sanity scores of
    the fully randomised model (what MLflow compares between runs)."""
    parts = []
    for name, cols in (("causal", ["drop_otsu", "drop_planted", "drop_random"]),
                       ("curves", ["deletion_auc", "insertion_auc"])):
        df = probes.get(name, pd.DataFrame())
        if len(df):
            parts.append(df.groupby(["method", "model"])[cols].mean())
    sn = probes.get("sanity", pd.DataFrame())
    if len(sn):
        last = sn[sn["randomized_layers"] == sn["total_layers"]]
        parts.append(last.groupby(["method", "model"])[["spearman", "ssim"]].mean().add_prefix("sanity_"))
    cost = probes.get("cost", pd.DataFrame())
    if len(cost):
        parts.append(cost.groupby(["method", "model"])[["seconds_per_image"]].mean())
    return pd.concat(parts, axis=1).reset_index() if parts else pd.DataFrame()


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (float, np.floating)):
        return round(float(x), 4) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def dvc_metrics(summary: pd.DataFrame, chance_random: pd.DataFrame, prior: pd.DataFrame) -> dict:
    """``metrics/bench.json``: per method its headline numbers, and the chance levels."""
    out = {"methods": {}}
    for r in summary.to_dict("records"):
        name = r.pop("method")
        out["methods"][name] = {k: v for k, v in _clean(r).items() if v is not None}
    out["chance"] = _clean({
        "random_weights_iou": float(chance_random["iou"].mean()) if len(chance_random) else float("nan"),
        "random_weights_f1": float(chance_random["f1"].mean()) if len(chance_random) else float("nan"),
        "prior_iou": float(prior[prior["method"] == canonical.PAPER]["iou"].mean()) if len(prior) else float("nan"),
    })
    return out


# ------------------------------------------------------------------------------ the stage


def run_bench(params: Params, load_model=None, probe: bool = True) -> dict:
    """Write ``bench.out_dir`` and ``metrics/bench.json``; returns the summary. ``probe=False``
    skips the model part (no TensorFlow)."""
    from ..paths import write_json_atomic
    from .figures import totals_figure

    t0 = time.perf_counter()
    methods = bench_methods(params)
    out = layout.bench_dir(params)
    guard = params.output_guard("bench")
    guard.check(out)
    planted = canonical.planted_table(params, methods)
    prior, specificity = canonical.chance_tables(params, methods)
    chance_random = canonical.random_weight_chance(params, params.bench.chance_repeats, params.bench.seed)
    agreement = canonical.agreement_table(params, methods)
    probes = probe_all(params, methods, load_model) if probe else {}
    table = methods_expressions(planted, probes)
    summary = methods_summary(params, methods, table, probes, agreement, specificity)
    totals = {m: canonical.totals(params, m) for m in methods}
    with staged_dir(out, guard) as tmp:
        table.to_csv(tmp / layout.BENCH_TABLE, index=False)
        planted.to_csv(tmp / layout.BENCH_PLANTED, index=False)
        prior.to_csv(tmp / layout.BENCH_CHANCE_PRIOR, index=False)
        specificity.to_csv(tmp / layout.BENCH_SPECIFICITY, index=False)
        chance_random.to_csv(tmp / layout.BENCH_CHANCE_RANDOM, index=False)
        agreement.to_csv(tmp / layout.BENCH_AGREEMENT, index=False)
        summary.to_csv(tmp / layout.BENCH_METHODS_SUMMARY, index=False)
        networks = per_network(probes)
        networks.to_csv(tmp / layout.BENCH_NETWORKS, index=False)
        for name, file in (("causal", layout.BENCH_CAUSAL), ("curves", layout.BENCH_CURVES),
                           ("sanity", layout.BENCH_SANITY), ("cost", layout.BENCH_COST)):
            probes.get(name, pd.DataFrame()).to_csv(tmp / file, index=False)
        if any(totals.values()):
            totals_figure(totals, tmp / layout.BENCH_FIGURE_TOTALS, params.heatmaps.colormap)
        metrics = dvc_metrics(summary, chance_random, prior)
        by_network: dict[str, dict] = {}
        for r in networks.to_dict("records"):
            m, net = r.pop("method"), r.pop("model")
            by_network.setdefault(m, {})[net] = {k: v for k, v in _clean(r).items() if v is not None}
        result = {"methods": methods, "fold": params.bench.fold, "seconds": round(time.perf_counter() - t0, 2),
                  "metrics": metrics, "by_network": by_network}
        (tmp / layout.BENCH_SUMMARY).write_text(json.dumps(result, indent=2) + "\n")
    write_json_atomic(layout.metrics_file(layout.BENCH_METRICS), metrics)
    log.info("bench: %d methods in %.1f s -> %s", len(methods), result["seconds"], out)
    return result


def log_to_mlflow(params: Params, result: dict) -> list[str]:
    """One ``bench`` run per method (tag ``fer_xai.method``) with its headline numbers and the same
    per network (``<metric>/<network>``), the tables as artifacts of the LIME run; returns the run ids."""
    import mlflow

    from ..tracking import stage_run

    out = layout.bench_dir(params)
    ids = []
    baseline = result["metrics"]["methods"].get("random", {})  # the random pixel order: no method of its own
    for m, values in result["metrics"]["methods"].items():
        if m == "random":
            continue
        metrics = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for net, nv in result.get("by_network", {}).get(m, {}).items():
            metrics.update({f"{k}/{net}": float(v) for k, v in nv.items()})
        with stage_run("bench", experiment=params.tracking.experiment, run_name=f"bench-{m}",
                       params={"method": m, **params.bench.model_dump()}, tags={"fer_xai.method": m}) as run:
            mlflow.log_metrics(metrics)
            if m == canonical.PAPER:
                mlflow.log_metrics({f"chance.{k}": float(v) for k, v in result["metrics"]["chance"].items()
                                    if v is not None})
                mlflow.log_metrics({f"random_order.{k}": float(v) for k, v in baseline.items()})
                mlflow.log_artifacts(str(out), artifact_path="bench")
            ids.append(run.info.run_id)
    return ids


