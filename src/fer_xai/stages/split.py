"""``fer-xai split``: subject-grouped, label-stratified folds within each dataset.

No subject appears in two folds; each fold holds roughly the same share of every dataset and
label (scikit-learn's StratifiedGroupKFold per dataset, seeded from ``split.seed``).
"""

from __future__ import annotations

import json
import logging
import zlib

import click
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from .. import layout
from ..config import Params
from ..paths import write_json_atomic, write_text_atomic
from ..prepared import load_prepared
from .options import no_mlflow_option

log = logging.getLogger(__name__)

FOLD_COLUMNS = ["id", "dataset", "subject", "label", "fold"]


def assign_folds(manifest: pd.DataFrame, n_folds: int, seed: int) -> pd.DataFrame:
    """Return ``manifest[id, dataset, subject, label]`` with a 1-based ``fold`` column."""
    parts = []
    for ds, g in sorted(manifest.groupby("dataset"), key=lambda t: str(t[0])):
        subjects = g["subject"].astype(str)
        n_subj = subjects.nunique()
        if n_subj < n_folds:
            raise click.ClickException(
                f"dataset '{ds}' has {n_subj} subject(s), fewer than split.n_folds={n_folds}: "
                "subject-grouped folds are impossible (lower n_folds or add subjects)"
            )
        # Seed per dataset so adding a dataset does not reshuffle the others' folds.
        rng_seed = int(np.random.SeedSequence([seed, zlib.crc32(str(ds).encode())]).generate_state(1)[0] % (2**31 - 1))
        skf = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=rng_seed)
        fold = np.zeros(len(g), dtype=int)
        for f, (_, test_idx) in enumerate(skf.split(np.zeros(len(g)), g["label"].to_numpy(), subjects.to_numpy())):
            fold[test_idx] = f + 1
        part = g[["id", "dataset", "subject", "label"]].copy()
        part["subject"] = subjects
        part["fold"] = fold
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["dataset", "fold", "subject", "id"], kind="stable").reset_index(drop=True)


def fold_summary(folds: pd.DataFrame) -> dict:
    counts = folds.groupby(["fold", "label"]).size().unstack(fill_value=0)
    share = counts.div(counts.sum(axis=0), axis=1)
    return {
        "n_images": int(len(folds)),
        "n_subjects": int(folds.groupby("dataset")["subject"].nunique().sum()),
        "images_per_fold": {int(k): int(v) for k, v in folds["fold"].value_counts().sort_index().items()},
        "subjects_per_fold": {int(k): int(v) for k, v in folds.groupby("fold").apply(
            lambda g: g[["dataset", "subject"]].drop_duplicates().shape[0]).items()},
        # Largest deviation of any fold's share of a label from the ideal 1/n_folds.
        "max_label_share_deviation": float((share - 1.0 / share.shape[0]).abs().to_numpy().max()),
    }


def run(params: Params) -> dict:
    log.info("reading %s", layout.prepared_manifest(params))
    prepared = load_prepared(layout.prepared_dir(params))
    folds = assign_folds(prepared.manifest, params.split.n_folds, params.split.seed)
    out = write_text_atomic(layout.folds_file(params), folds.to_csv(index=False), encoding="utf-8")
    summary = fold_summary(folds)
    metrics = layout.metrics_file("split")
    write_json_atomic(metrics, summary)
    log.info("wrote %s and %s: %d images in %d folds (max label-share deviation %.3f)", out,
             metrics, len(folds), params.split.n_folds, summary["max_label_share_deviation"])
    return summary


@click.command("split")
@no_mlflow_option
@click.pass_obj
def cli(obj, no_mlflow: bool) -> None:
    """Assign subject-grouped, stratified cross-validation folds (data/folds.csv)."""
    params: Params = obj.params
    summary = run(params)
    if not no_mlflow:
        import mlflow

        from ..tracking import stage_run

        out = layout.folds_file(params)
        with stage_run("split", params.tracking.experiment, params={"split": params.split.model_dump()}):
            mlflow.log_metrics({"n_images": summary["n_images"], "n_subjects": summary["n_subjects"],
                                "max_label_share_deviation": summary["max_label_share_deviation"]})
            for f, n in summary["images_per_fold"].items():
                mlflow.log_metric("images_per_fold", n, step=f)
            mlflow.log_artifact(str(out))
            mlflow.log_artifact(str(layout.metrics_file("split")))
    click.echo(json.dumps(summary["images_per_fold"]))
