"""What a training ran on, as MLflow dataset inputs: the UI's Dataset column of each run.

Two inputs per fold run, contexts ``training`` and ``testing``: the rows of the prepared manifest
used (id, subject, label), named after the DVC data version of the prepared faces
(``prepared@<md5 prefix>``), with MLflow's digest of exactly those rows; tags hold the full data
version, the fold and the count of faces per expression.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from ..labels import EXPRESSIONS
from ..tracking import retry_store_conflicts
from .data import FoldData

DATASET_NAME = "prepared"
DATA_VERSION_TAG = "fer_xai.data_version"
FOLD_TAG = "fer_xai.fold"
COUNTS_TAG = "fer_xai.counts"


def dataset_name(data_version: str) -> str:
    """``prepared@<first 8 hex digits of the prepared faces' hash>``: short enough for the UI's column."""
    return f"{DATASET_NAME}@{data_version.removeprefix('local:')[:8]}"


def fold_frame(data: FoldData) -> pd.DataFrame:
    return pd.DataFrame({"id": data.ids, "subject": data.subjects,
                         "label": [EXPRESSIONS[int(i)] for i in data.labels]})


def class_counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["label"].value_counts()
    return {e: int(counts.get(e, 0)) for e in EXPRESSIONS}


def log_fold_inputs(train: FoldData, test: FoldData, *, fold: int, data_version: str, manifest: Path) -> None:
    """Log the training and test rows of one fold as dataset inputs of the active MLflow run."""
    import mlflow

    datasets, tags = [], []
    for data in (train, test):
        frame = fold_frame(data)
        with warnings.catch_warnings():
            # MLflow registers one local-file source for both "" and "file:" and warns that a path matches both.
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple")
            datasets.append(mlflow.data.from_pandas(frame, source=str(manifest), targets="label",
                                                    name=dataset_name(data_version)))
        tags.append({DATA_VERSION_TAG: data_version, FOLD_TAG: str(fold),
                     COUNTS_TAG: json.dumps(class_counts(frame), separators=(",", ":"))})
    # Trainings running side by side (fer-xai repro --executor ray) log the same new dataset at once.
    retry_store_conflicts(lambda: mlflow.log_inputs(datasets, contexts=["training", "testing"], tags_list=tags),
                          f"fold {fold}: logging the dataset inputs")
