"""Trainings that run side by side (``fer-xai repro --executor ray``) write one MLflow store at the
same moments: each logs its fold's dataset inputs (the same new dataset for every network) and
registers its fold model. From several processes at once into one SQLite store, every write
must succeed: each registration with its own version and an alias pointing to a READY version of
its own fold, each run with its two dataset inputs. (Plain ``mlflow.log_inputs`` from 4 processes
at once lost 3 of 16 such races here: "UNIQUE constraint failed: datasets...".)"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

WRITERS, ROUNDS = 4, 3


def _write(uri: str, writer: int, manifest: str, barrier, results) -> None:
    from types import SimpleNamespace

    import mlflow
    import numpy as np

    from fer_xai.registry import register_fold_model
    from fer_xai.training.inputs import log_fold_inputs

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("fer-xai")
    errors, runs = [], []
    for r in range(ROUNDS):
        train = SimpleNamespace(ids=[f"face{r}", "other"], subjects=["s1", "s2"], labels=np.array([0, 1]))
        test = SimpleNamespace(ids=[f"test{r}"], subjects=["s3"], labels=np.array([2]))
        fold = writer * ROUNDS + r + 1
        with mlflow.start_run() as run:
            runs.append(run.info.run_id)
            barrier.wait(timeout=600)  # all writers write together, after their imports
            try:
                log_fold_inputs(train, test, fold=1, data_version=f"local:{r:08d}", manifest=Path(manifest))
                register_fold_model(f"file:///nowhere/{fold}", "songnet", fold, {"writer": writer})
            except Exception as exc:  # noqa: BLE001 - reported by the test
                errors.append(f"writer {writer} round {r}: {type(exc).__name__}: {exc}")
    results.put((errors, runs))


@pytest.mark.slow
def test_concurrent_trainings_write_one_sqlite_store_without_losing_a_write(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment("fer-xai")  # the schema and experiment first, as the project's first stage does
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    writers = [ctx.Process(target=_write, args=(uri, w, str(tmp_path / "manifest.parquet"), barrier, results))
               for w in range(WRITERS)]
    for w in writers:
        w.start()
    outcomes = [results.get(timeout=900) for _ in writers]
    for w in writers:
        w.join(timeout=60)
    errors = [e for errs, _ in outcomes for e in errs]
    assert not errors, errors
    for _, runs in outcomes:
        for run_id in runs:
            contexts = [{t.key: t.value for t in i.tags}["mlflow.data.context"]
                        for i in client.get_run(run_id).inputs.dataset_inputs]
            assert sorted(contexts) == ["testing", "training"]
    n = WRITERS * ROUNDS
    versions = client.search_model_versions("name = 'fer-songnet'")
    assert sorted(int(v.version) for v in versions) == list(range(1, n + 1))
    aliases = client.get_registered_model("fer-songnet").aliases
    assert set(aliases) == {f"fold{k}" for k in range(1, n + 1)}
    for alias, version in aliases.items():
        mv = client.get_model_version("fer-songnet", version)
        assert mv.status == "READY" and f"fold{mv.tags['fold']}" == alias
