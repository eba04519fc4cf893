"""``fer-xai evaluate``: cross-validation summary per network (paper Figure 5).

Reads every ``<train.out_dir>/<model>/fold<k>/metrics.json`` of the configured models and
folds; writes ``cv_folds.csv`` (one row per training), ``cv_summary.csv`` (mean and std per
network), ``cv_accuracy.png`` and, for ``dvc plots``, each training's learning curves and
predictions (``curves/``, ``confusion/``) under ``evaluate.out_dir``, plus ``metrics/cv.json``.
"""

from __future__ import annotations

import json
import logging

import click
import numpy as np
import pandas as pd

from .. import layout
from ..config import Params
from ..outputs import staged_dir
from ..paths import write_json_atomic
from .options import no_mlflow_option

log = logging.getLogger(__name__)

_FOLD_METRICS = ["test_accuracy", "test_macro_precision", "test_macro_recall", "test_macro_f1"]


def collect(params: Params) -> pd.DataFrame:
    log.info("reading <model>/fold<k>/metrics.json under %s for %d network(s) x %d fold(s)",
             layout.train_dir(params), len(params.train.models), len(params.train.folds))
    rows, missing = [], []
    for m in params.train.models:
        for k in params.train.folds:
            path = layout.train_fold_dir(params, m, k) / layout.FOLD_METRICS
            if not path.is_file():
                missing.append(str(path))
                continue
            met = json.loads(path.read_text())
            rows.append({"model": m, "fold": k, **{c: met[c] for c in _FOLD_METRICS},
                         "pretrained": met.get("pretrained"), "n_test": met.get("n_test")})
    if missing:
        raise click.ClickException("missing training results (run `dvc repro` or `fer-xai train`): "
                                   + ", ".join(missing))
    return pd.DataFrame(rows)


def _read_fold_csv(path, columns: list[str]) -> pd.DataFrame:
    """``columns`` of a training's CSV; a missing file or column is an error naming the file."""
    if not path.is_file():
        raise click.ClickException(f"{path}: missing training result (run `dvc repro` or `fer-xai train`)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: not a readable CSV ({exc})") from exc
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise click.ClickException(f"{path}: has no column(s) {', '.join(lacking)} (columns: {list(frame.columns)})")
    return frame[columns]


def write_plot_data(params: Params, out) -> None:
    """Per training, for `dvc plots`: its learning curves (``curves/<model>-fold<k>.csv``: epoch,
    loss, accuracy) and its test labels and predictions (``confusion/<model>-fold<k>.csv``)."""
    for sub in (layout.CV_CURVES, layout.CV_CONFUSION):
        (out / sub).mkdir()
    for m in params.train.models:
        for k in params.train.folds:
            fold_dir, name = layout.train_fold_dir(params, m, k), layout.cv_plot_name(m, k)
            _read_fold_csv(fold_dir / layout.HISTORY, ["epoch", "loss", "accuracy"]).to_csv(
                out / layout.CV_CURVES / name, index=False)
            _read_fold_csv(fold_dir / layout.PREDICTIONS, ["id", "label", "pred"]).to_csv(
                out / layout.CV_CONFUSION / name, index=False)


def summarize(folds: pd.DataFrame) -> pd.DataFrame:
    g = folds.groupby("model", sort=False)
    out = pd.DataFrame({
        "accuracy_mean": g["test_accuracy"].mean(),
        "accuracy_std": g["test_accuracy"].std(ddof=1).fillna(0.0),
        "macro_f1_mean": g["test_macro_f1"].mean(),
        "n_folds": g.size(),
        "pretrained": g["pretrained"].first(),
    })
    return out.reset_index()


def plot(summary: pd.DataFrame, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..models import network

    names = [network(m).display_name for m in summary["model"]]
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(summary), 3.8), dpi=120)
    x = np.arange(len(summary))
    ax.bar(x, summary["accuracy_mean"], yerr=summary["accuracy_std"], capsize=4, color="#4C72B0")
    ax.axhline(1 / 6, ls="--", lw=1, color="gray", label="chance (1/6)")
    for i, v in enumerate(summary["accuracy_mean"]):
        ax.text(i + 0.22, min(v + 0.01, 1.02), f"{v:.3f}", ha="left", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("test accuracy (mean ± std over folds)")
    ax.set_title("Cross-validation accuracy per network")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(params: Params) -> pd.DataFrame:
    out = layout.evaluate_dir(params)
    # Folders written before evaluate was staged hold only these files: still the stage's own.
    guard = params.output_guard("evaluate").with_known_names((layout.CV_FOLDS, layout.CV_SUMMARY, layout.CV_PLOT))
    folds = collect(params)
    summary = summarize(folds)
    with staged_dir(out, guard) as tmp:
        folds.to_csv(tmp / layout.CV_FOLDS, index=False)
        summary.to_csv(tmp / layout.CV_SUMMARY, index=False)
        plot(summary, tmp / layout.CV_PLOT)
        write_plot_data(params, tmp)
    metrics = layout.metrics_file(layout.CV_METRICS)
    write_json_atomic(metrics, {
        r.model: {"accuracy_mean": round(r.accuracy_mean, 4), "accuracy_std": round(r.accuracy_std, 4)}
        for r in summary.itertuples()
    })
    for r in summary.itertuples():
        log.info("%s: accuracy %.4f ± %.4f over %d folds", r.model, r.accuracy_mean, r.accuracy_std, r.n_folds)
    log.info("wrote %s (%s, %s, %s) and %s", out, layout.CV_FOLDS, layout.CV_SUMMARY, layout.CV_PLOT, metrics)
    return summary


@click.command("evaluate")
@no_mlflow_option
@click.pass_obj
def cli(obj, no_mlflow: bool) -> None:
    """Cross-validation accuracy per network (mean and std over folds), CSV + bar chart."""
    params: Params = obj.params
    summary = run(params)
    if not no_mlflow:
        import mlflow

        from ..tracking import stage_run

        out = layout.evaluate_dir(params)
        with stage_run("evaluate", params.tracking.experiment,
                       params={"models": list(params.train.models), "folds": list(params.train.folds)}):
            for r in summary.itertuples():
                mlflow.log_metrics({f"{r.model}.accuracy_mean": r.accuracy_mean,
                                    f"{r.model}.accuracy_std": r.accuracy_std})
            mlflow.log_artifacts(str(out), artifact_path="cv")
    click.echo(summary.to_string(index=False))
