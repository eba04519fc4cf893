"""A tracking-store write that collides with a concurrent one is repeated, anything else is not."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from fer_xai import tracking


def _flaky(failures: list[Exception]):
    calls = []

    def write():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return write, calls


def test_conflicts_are_retried_and_other_errors_raised(monkeypatch):
    monkeypatch.setattr(tracking.time, "sleep", lambda s: None)
    write, calls = _flaky([RuntimeError("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.name"),
                           RuntimeError("(sqlite3.OperationalError) database is locked")])
    assert tracking.retry_store_conflicts(write, "x") == "done" and len(calls) == 3
    write, calls = _flaky([ValueError("no such experiment")])
    with pytest.raises(ValueError, match="no such experiment"):
        tracking.retry_store_conflicts(write, "x")
    assert len(calls) == 1
    write, calls = _flaky([RuntimeError("database is locked")] * tracking.STORE_RETRIES)
    with pytest.raises(RuntimeError, match="locked"):
        tracking.retry_store_conflicts(write, "x")
    assert len(calls) == tracking.STORE_RETRIES


def test_fold_inputs_survive_a_concurrent_training_logging_the_same_dataset(monkeypatch, tmp_path):
    import mlflow

    from fer_xai.training import inputs

    monkeypatch.setattr(tracking.time, "sleep", lambda s: None)
    logged = []

    def log_inputs(datasets, contexts, tags_list):
        if not logged:
            logged.append("lost the race")
            raise mlflow.exceptions.MlflowException(
                "BAD_REQUEST: (sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id")
        logged.append(contexts)

    monkeypatch.setattr(mlflow, "log_inputs", log_inputs)
    rows = SimpleNamespace(ids=["a", "b"], subjects=["s1", "s2"], labels=np.array([0, 1]))
    inputs.log_fold_inputs(rows, rows, fold=1, data_version="local:0123456789", manifest=tmp_path / "m.parquet")
    assert logged == ["lost the race", ["training", "testing"]]
