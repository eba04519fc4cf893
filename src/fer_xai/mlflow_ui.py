"""How the project's experiment opens in the MLflow UI: the model-training view, one group of
fold runs per network with the headline metrics side by side.

What the UI reads was checked in MLflow 3.17's bundle (``mlflow/server/js/build``):

- ``mlflow.experimentKind`` = ``custom_model_development`` marks an experiment as model training
  (the UI's own "experiment type" selector writes this tag). 3.17's UI, though, takes the kind
  from its "GenAI | Model training" switch, kept per browser (local storage) and in the URL
  parameter ``workflowType``, whose default is GenAI: only :func:`runs_url`, with
  ``workflowType=machine_learning``, opens the runs table in a fresh browser. The tag is set for
  the UIs that read it and for anyone filtering experiments by kind.
- A view of the runs table (filter, columns, "Group by") is an experiment tag
  ``mlflow.sharedViewState.<key>`` holding its JSON, opened by ``?viewStateShareKey=<key>``: what
  the UI's "Share" button writes. :func:`training_view` is one: the training runs grouped by
  their ``model`` tag (the group row shows the mean over folds), with the dataset they trained
  on and :data:`HEADLINE_METRICS` as columns.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
VIEW_KEY = "fer-xai-trainings"
WORKFLOW_TYPE = "machine_learning"
GROUP_TAG = "model"  # set on every training run (stages/train.py); registry lookups do not depend on grouping
DESCRIPTION_TAG = "mlflow.note.content"
# Test metrics of `fer-xai train`, then the Ekman comparison `fer-xai compare` logs into each training run.
HEADLINE_METRICS = ("test_accuracy", "test_macro_f1", "ekman/iou/Avg", "ekman/f1/Avg")
_HEADLINE_LABELS = {"test_accuracy": "test accuracy", "test_macro_f1": "test macro F1",
                    "ekman/iou/Avg": "Ekman IoU (mean over expressions)",
                    "ekman/f1/Avg": "Ekman F1 (mean over expressions)"}


def _column(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"  # the UI's column keys, e.g. metrics.`test_accuracy`


def training_view() -> dict[str, Any]:
    """The runs-table view of the trainings, as the UI's shared view state."""
    metrics = [_column("metrics", m) for m in HEADLINE_METRICS]
    dataset = _column("attributes", "Dataset")
    return {
        "searchFilter": "tags.`fer_xai.stage` = 'train'",
        "selectedColumns": [dataset, *metrics, _column("tags", "fold")],
        "columnOrder": [*metrics, dataset],  # the metrics first: the table scrolls sideways
        "columnWidths": {m: 120 for m in metrics},
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": GROUP_TAG}]},
    }


def experiment_tags() -> dict[str, str]:
    return {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
            VIEW_TAG_PREFIX + VIEW_KEY: json.dumps(training_view(), separators=(",", ":"))}


def tag_experiment(client, experiment_id: str, current: Mapping[str, str]) -> None:
    """Set the tags of :func:`experiment_tags` that ``current`` (the experiment's tags) lacks or
    holds an older version of; an experiment kind chosen in the UI is kept."""
    for key, value in experiment_tags().items():
        if key not in current or (key != EXPERIMENT_KIND_TAG and current[key] != value):
            try:
                client.set_experiment_tag(experiment_id, key, value)
            except Exception as exc:  # noqa: BLE001 - a store that refuses the tag must not stop the stage
                log.warning("experiment %s: tag %s not set (%s); the UI shows its default view", experiment_id,
                            key, exc)


def runs_url(base: str, experiment_id: str) -> str:
    """The UI's runs table of the experiment in the model-training view, trainings grouped per network."""
    return (f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"
            f"?workflowType={WORKFLOW_TYPE}&viewStateShareKey={VIEW_KEY}")


def headline_description(title: str, metrics: Mapping[str, Any]) -> str:
    """Markdown for a run's description: the headline metrics it has, under their metric keys."""
    rows = [f"| {_HEADLINE_LABELS[k]} | `{k}` | {float(metrics[k]):.4f} |" for k in HEADLINE_METRICS
            if isinstance(metrics.get(k), (int, float)) and math.isfinite(float(metrics[k]))]
    table = ["| metric | key | value |", "|---|---|---:|", *rows] if rows else []
    return "\n".join([f"**{title}**", "", *table])


def landing_url(base: str, store_uri: str, experiment: str) -> str:
    """:func:`runs_url` of ``experiment`` in the store at ``store_uri``; ``base`` while it has none."""
    from mlflow.tracking import MlflowClient

    exp = MlflowClient(tracking_uri=store_uri).get_experiment_by_name(experiment)
    return runs_url(base, exp.experiment_id) if exp is not None else base


if __name__ == "__main__":  # `make ui` prints the address to open
    import argparse

    parser = argparse.ArgumentParser(description="The MLflow UI address of the trainings' view.")
    parser.add_argument("--base", required=True, help="the UI's address, e.g. http://127.0.0.1:5000")
    parser.add_argument("--store", required=True, help="the tracking store URI")
    parser.add_argument("--experiment", default="fer-xai")
    args = parser.parse_args()
    print(landing_url(args.base, args.store, args.experiment))
