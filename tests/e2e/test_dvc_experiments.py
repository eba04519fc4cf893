"""DVC the way its users work, on one git + DVC tiny project (songnet, folds 1-2, per-fold stages as
in the paper profile): `dvc exp run -S` trains and explains it once; `dvc exp show` then lists the
changed param and the headline metrics only, and `dvc plots show` / `dvc plots diff` resolve every
plot that dvc.yaml declares."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from helpers.dvc_project import BIN, REPO, declared_plots, make_project, run

pytestmark = pytest.mark.slow

STAGES = ["split", "train", "evaluate", "explain", "masks", "heatmaps", "compare"]
TINY = {
    "train": {"models": ["songnet"], "folds": [1, 2], "dvc_stages": {"per_fold": ["songnet"], "per_network": []},
              "networks": {"songnet": {"input_size": 32, "epochs": 1, "optimizer": "adam", "learning_rate": 1e-3}}},
    "explain": {"positives_per_class": 1, "num_samples": 20, "batch_size": 20, "sheet_faces": 6},
    "compare": {"bootstrap_samples": 100},
}
EPOCHS = "train.networks.songnet.epochs"
# README's `dvc exp show --drop`: the dependencies' hash columns (source, data and stage outputs).
DEPS = "src/|data/|models|explanations|heatmaps|masks|reports"
# What metrics/*.json hold for one network: the only metric columns `dvc exp show` may list.
HEADLINE = {
    "metrics/cv.json": {"songnet.accuracy_mean", "songnet.accuracy_std"},
    "metrics/heatmaps.json": {"n_explanations", "n_standardized", "n_rejected", "planted_truth.precision",
                              "planted_truth.recall", "planted_truth.iou", "planted_truth.f1"},
    "metrics/compare.json": {"SongNet.iou", "SongNet.f1", "Avg.iou", "Avg.f1"},
}


def dvc(root: Path, *args: str, timeout: float = 300) -> str:
    return run([str(BIN / "dvc"), *args], root, timeout=timeout).stdout


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, tiny_study_template):
    """The project after one `dvc exp run -S <EPOCHS>=2` from a commit without results: (root, name)."""
    root = make_project(tmp_path_factory.mktemp("dvc_exp") / "proj", tiny_study_template, stages=STAGES,
                        params=TINY)
    # The repo's own .gitignore: git holds what it holds in a clone (metrics/*.json, not the data).
    with (root / ".gitignore").open("a") as f:
        f.write((REPO / ".gitignore").read_text())
    for cmd in (["git", "config", "user.name", "test"], ["git", "config", "user.email", "test@example.org"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "tiny study"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    out = dvc(root, "exp", "run", "-S", f"{EPOCHS}=2", timeout=1500)
    name = re.search(r"Ran experiment\(s\): (\S+)", out)
    assert name, out
    return root, name.group(1)


def _check_rendered(root: Path, shown: dict, revisions: set[str]) -> dict[str, int]:
    """Every declared plot drawn from data, for each of ``revisions``: {declared id: plots drawn}."""
    assert not shown.get("errors"), shown["errors"]
    data = shown["data"]
    drawn = {}
    for plot_id in declared_plots(root):
        # A folder is drawn file by file; a file or a named plot (y from files) as itself.
        keys = [k for k in data if k == plot_id or k.startswith(plot_id.rstrip("/") + "/")]
        assert keys, f"declared plot {plot_id!r} not drawn; drawn: {sorted(data)}"
        for key in keys:
            assert data[key], f"{key}: no data"
            for rendered in data[key]:
                assert set(rendered["revisions"]) <= revisions, rendered["revisions"]
                if rendered["type"] == "vega":
                    values = rendered["content"]["data"]["values"]
                    assert values and {v["rev"] for v in values} == set(rendered["revisions"]), key
                else:
                    assert rendered["type"] == "image" and Path(rendered["url"]).is_file(), rendered
            assert set().union(*(r["revisions"] for r in data[key])) == revisions, key
        drawn[plot_id] = len(keys)
    return drawn


def test_plots_show_draws_every_declared_plot(experiment):
    root, _ = experiment
    shown = json.loads(dvc(root, "plots", "show", "--json"))
    drawn = _check_rendered(root, shown, {"workspace"})
    # One curve plot and one confusion matrix per (network, fold), one figure per heatmap grid.
    assert drawn["reports/cv/curves"] == drawn["reports/cv/confusion"] == 2
    assert drawn["heatmaps/figures"] == 3  # total, by_net, by_cv_SongNet
    curves = shown["data"]["reports/cv/curves/songnet-fold2.csv"][0]["content"]["data"]["values"]
    assert {v["field"] for v in curves} == {"loss", "accuracy"} and {v["epoch"] for v in curves} == {"0", "1"}
    conf = shown["data"]["reports/cv/confusion/songnet-fold1.csv"][0]["content"]["spec"]["encoding"]
    assert conf["x"]["field"] == "label" and conf["y"]["field"] == "pred"  # true label across, prediction down
    text = dvc(root, "plots", "show")
    assert "index.html" in text and "failed" not in text


def test_plots_diff_draws_the_experiment_beside_the_workspace(experiment):
    root, name = experiment
    shown = json.loads(dvc(root, "plots", "diff", name, "--json"))
    _check_rendered(root, shown, {"workspace", name})


def test_exp_show_lists_the_changed_param_and_headline_metrics_only(experiment):
    root, name = experiment
    rows = json.loads(dvc(root, "exp", "show", "--json"))
    (baseline,) = [r for r in rows if r["rev"] != "workspace"]
    (exp,) = [e for e in baseline["experiments"] if e.get("name") == name]
    (result,) = exp["revs"]
    # DVC leaves out null values (a tiny model's empty Ekman cells); nothing beyond the headline.
    metrics = {path: set(_flat(m["data"])) for path, m in result["data"]["metrics"].items()}
    assert set(metrics) == set(HEADLINE) and all(metrics[p] <= HEADLINE[p] for p in HEADLINE), metrics
    assert metrics["metrics/cv.json"] == HEADLINE["metrics/cv.json"]
    assert {"n_explanations", "n_standardized", "n_rejected"} <= metrics["metrics/heatmaps.json"]
    assert _flat(result["data"]["params"]["params.yaml"]["data"])[EPOCHS] == 2
    assert _flat(baseline["data"]["params"]["params.yaml"]["data"])[EPOCHS] == 1

    # The table the README shows: the param that changed and the metrics, no dependency hashes.
    table = list(csv.DictReader(io.StringIO(dvc(root, "exp", "show", "--only-changed", "--drop", DEPS, "--csv"))))
    header = set(table[0]) - {"Experiment", "rev", "typ", "Created", "parent"}
    assert EPOCHS in header and "songnet.accuracy_mean" in header
    assert header <= {EPOCHS, *set().union(*HEADLINE.values())}, sorted(header)
    row = next(r for r in table if r["Experiment"] == name)
    assert row[EPOCHS] == "2" and 0 <= float(row["songnet.accuracy_mean"]) <= 1
