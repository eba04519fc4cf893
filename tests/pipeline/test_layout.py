"""Every stage writes where :mod:`fer_xai.layout` says: dvc.yaml's ``outs``/``metrics`` (resolved by
DVC itself, for the demo params and the paper profile), the files the stages write, and no writer
spelling a file name of its own."""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from fer_xai import layout
from fer_xai.cli import main
from fer_xai.config import Params, load_params
from fer_xai.labels import DISPLAY_NAMES, EXPRESSIONS
from fer_xai.models.zoo import display_name
from fer_xai.outputs import MARKER
from fer_xai.paths import resolve
from helpers.dvc_project import declared_plots, plot_sources

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "fer_xai"


def _invoke(root: Path, *args: str):
    res = CliRunner().invoke(main, ["--params", str(root / "params.yaml"), *args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


@pytest.fixture
def pipeline(project, monkeypatch):
    """The repo's params.yaml, dvc.yaml and profiles/ in an isolated DVC project (no git)."""
    from dvc.repo import Repo

    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(REPO / "profiles", project / "profiles")
    Repo.init(str(project), no_scm=True).close()
    return project


# --------------------------------------------------------------------------- dvc.yaml vs layout


def _norm(path: Path | str) -> str:
    return os.path.normpath(str(path))


def _dvc_stages(root: Path) -> list[dict]:
    """Each stage as DVC resolves it (``${...}``, ``matrix``): name, command options, outs, deps."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stages = []
        for st in repo.index.stages:
            argv = shlex.split(st.cmd)
            assert argv[0] == "fer-xai", st.cmd
            opts = dict(zip(argv[2::2], argv[3::2]))
            stages.append({
                "name": st.name, "kind": st.name.split("@", 1)[0], "command": argv[1], "opts": opts,
                "outs": {_norm(root / o.def_path): bool(o.metric) for o in st.outs},
                "deps": [_norm(root / d.def_path) for d in st.deps if not isinstance(d, ParamsDependency)],
            })
        return stages


# What layout gives each kind of stage: {path: is a DVC metric}; model/fold from its command line.
# The DVC metrics are the headline ones `dvc exp show` lists (cv, heatmaps, compare, bench); the data
# stages' counts and each fold's metrics.json are plain outputs.
EXPECTED = {
    "synth": lambda p, m, k: {layout.synth_dir(p): False},
    "prepare": lambda p, m, k: {layout.prepared_dir(p): False, layout.metrics_file("prepare"): False},
    "split": lambda p, m, k: {layout.folds_file(p): False, layout.metrics_file("split"): False},
    "train": lambda p, m, k: {layout.train_fold_dir(p, m, k) / f: False for f in layout.FOLD_FILES},
    "train_folds": lambda p, m, k: {layout.train_network_dir(p, m): False},
    "evaluate": lambda p, m, k: {layout.evaluate_dir(p): False, layout.metrics_file(layout.CV_METRICS): True},
    "explain": lambda p, m, k: {layout.explain_fold_dir(p, m, k): False},
    "explain_folds": lambda p, m, k: {layout.explain_network_dir(p, m): False},
    "masks": lambda p, m, k: {layout.masks_dir(p): False},
    "heatmaps": lambda p, m, k: {layout.heatmaps_dir(p): False, layout.metrics_file("heatmaps"): True},
    "compare": lambda p, m, k: {layout.compare_dir(p): False, layout.metrics_file("compare"): True},
    "bench": lambda p, m, k: {layout.bench_dir(p): False, layout.metrics_file(layout.BENCH_METRICS): True},
    # The other explanation methods' stages: m is the method (--method), their folders those of LIME's
    # stages in layout.method_params.
    "explain_method": lambda p, m, k: {layout.explain_dir(layout.method_params(p, m)): False},
    "heatmaps_method": lambda p, m, k: {layout.heatmaps_dir(layout.method_params(p, m)): False,
                                        layout.metrics_file(layout.method_metrics_name("heatmaps", m)): False},
    "compare_method": lambda p, m, k: {layout.compare_dir(layout.method_params(p, m)): False,
                                       layout.metrics_file(layout.method_metrics_name("compare", m)): False},
    "report": lambda p, m, k: {layout.report_html(p): False, layout.report_figures_dir(p): False},
}


def _layout_paths_read(p: Params) -> set[str]:
    """Paths that dvc.yaml may name as a dependency besides the stages' outs: files inside them
    and the folders holding each network's outs."""
    files = {layout.prepared_manifest(p), layout.train_dir(p), layout.explain_dir(p)}
    # The bench reads every method's heatmaps and comparisons: the folders of their stages' outs.
    files |= {resolve(p.explain.methods_out_dir), resolve(p.heatmaps.methods_out_dir),
              resolve(p.compare.methods_out_dir)}
    for m in p.train.models:
        for k in p.train.folds:
            files |= {layout.train_fold_dir(p, m, k) / f for f in layout.FOLD_FILES}
    return {_norm(f) for f in files}


def _check_dvc_yaml(root: Path, p: Params) -> list[dict]:
    stages = _dvc_stages(root)
    assert {s["kind"] for s in stages} <= set(EXPECTED), "a dvc.yaml stage layout does not know"
    all_outs = set()
    for s in stages:
        model, fold = s["opts"].get("--model", s["opts"].get("--method")), s["opts"].get("--fold")
        expected = {_norm(path): metric for path, metric in
                    EXPECTED[s["kind"]](p, model, int(fold) if fold else None).items()}
        assert s["outs"] == expected, s["name"]
        if "--out" in s["opts"]:  # the command is told where to write: the declared folder
            assert _norm(resolve(s["opts"]["--out"])) in expected, s["name"]
        all_outs |= set(s["outs"])
    # Every dependency outside the source is the raw data, another stage's out or a layout file in one.
    readable = all_outs | _layout_paths_read(p) | {_norm(resolve(p.data.raw_dir))}
    for s in stages:
        for dep in s["deps"]:
            if not Path(dep).is_relative_to(root / "src"):
                assert dep in readable, f"{s['name']}: dependency {dep} is no path of fer_xai.layout"
    _check_plots(root, p, all_outs)
    return stages


def _check_plots(root: Path, p: Params, outs: set[str]) -> None:
    """dvc.yaml's `plots:` read the layout's plot files, each inside a stage's out."""
    sources = {_norm(root / s) for s in plot_sources(declared_plots(root))}
    ev, hm = layout.evaluate_dir(p), layout.heatmaps_dir(p)
    assert sources == {_norm(f) for f in (
        ev / layout.CV_CURVES, ev / layout.CV_CONFUSION, ev / layout.CV_SUMMARY,
        layout.compare_dir(p) / layout.EKMAN_PLOT, hm / layout.PLANTED_TRUTH, hm / layout.FIGURES)}
    for src in sources:
        assert any(Path(src).is_relative_to(o) for o in outs), f"plot source {src} is no stage's output"


def test_dvc_outs_and_metrics_are_the_layouts_demo(pipeline):
    p = load_params(pipeline / "params.yaml")
    stages = _check_dvc_yaml(pipeline, p)
    assert {s["kind"] for s in stages} == set(EXPECTED) - {"train", "explain"}  # the demo runs per network
    assert sum(s["kind"] == "train_folds" for s in stages) == len(p.train.models)


def test_dvc_outs_and_metrics_are_the_layouts_paper(pipeline):
    _invoke(pipeline, "profile", "apply", "paper")
    p = load_params(pipeline / "params.yaml")
    assert p.train.dvc_stages.per_fold and not p.train.dvc_stages.per_network
    stages = _check_dvc_yaml(pipeline, p)
    assert {s["kind"] for s in stages} == set(EXPECTED) - {"train_folds", "explain_folds"}
    assert sum(s["kind"] == "train" for s in stages) == len(p.train.models) * len(p.train.folds)


def test_layout_follows_params(pipeline):
    """Moving an out_dir in params.yaml moves the layout paths and dvc.yaml's outs alike."""
    import yaml

    raw = yaml.safe_load((pipeline / "params.yaml").read_text())
    raw["train"]["out_dir"] = "elsewhere/models"
    raw["heatmaps"]["out_dir"] = "elsewhere/heatmaps"
    raw["report"]["html_name"] = "study.html"
    (pipeline / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    p = load_params(pipeline / "params.yaml")
    assert layout.train_fold_dir(p, "weinet", 2) == pipeline / "elsewhere" / "models" / "weinet" / "fold2"
    assert layout.report_html(p) == pipeline / "reports" / "study.html"
    _check_dvc_yaml(pipeline, p)


# ----------------------------------------------------------------------- what the stages write


def _files(folder: Path) -> set[str]:
    return {f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()}


def test_prepared_files_are_the_layouts(tiny_study):
    from fer_xai.prepared import load_prepared

    p = load_params(tiny_study / "params.yaml")
    manifest = load_prepared(layout.prepared_dir(p)).manifest
    faces = [layout.prepared_face_image(d, i) for d, i in zip(manifest["dataset"], manifest["id"])]
    masks = [layout.prepared_face_mask(d, i) for d, i, m in zip(manifest["dataset"], manifest["id"], manifest["mask"])
             if m]
    assert list(manifest["image"]) == faces and set(manifest["mask"]) - {""} == set(masks)
    neutrals = [layout.prepared_face_neutral(d, i) for d, i, n in
                zip(manifest["dataset"], manifest["id"], manifest["neutral"]) if n]
    assert neutrals and set(manifest["neutral"]) - {""} == set(neutrals)
    assert _files(layout.prepared_dir(p)) == {
        MARKER, layout.PREPARED_MANIFEST, layout.PREPARED_REJECTED, layout.PREPARED_SUMMARY,
        layout.PREPARED_CONTACT_SHEET, *faces, *masks, *neutrals}
    assert layout.folds_file(p).is_file() and layout.metrics_file("split").is_file()


def _expected_heatmap_files(p: Params, counts: pd.DataFrame, planted: pd.DataFrame) -> set[str]:
    std = Path(layout.STANDARDIZED)
    files = {MARKER, layout.HEATMAPS_NPZ, layout.COUNTS, layout.HEATMAPS_REJECTED, layout.HEATMAPS_SUMMARY,
             layout.MEAN_FACE, layout.PLANTED_TRUTH, f"{layout.FIGURES}/{layout.FIGURE_TOTAL}",
             f"{layout.FIGURES}/{layout.FIGURE_BY_NET}"}
    for m in p.train.models:
        files.add(f"{layout.FIGURES}/{layout.figure_by_cv(display_name(m))}")
        files |= {layout.standardized_file(std, m, k).as_posix() for k in p.train.folds}
    color = layout.COLOR
    for r in counts[counts["n"] > 0].itertuples():
        net, expr = display_name(r.model), DISPLAY_NAMES[r.expression]
        files |= {f"{layout.BY_CV}/{layout.by_cv_name(net, r.fold, expr)}",
                  f"{color}/{layout.BY_CV}/{layout.by_cv_name(net, r.fold, expr, layout.COLORED)}",
                  f"{layout.BY_NET}/{layout.by_net_name(net, expr)}",
                  f"{color}/{layout.BY_NET}/{layout.by_net_name(net, expr, layout.COLORED)}",
                  f"{layout.TOTAL}/{layout.total_name(expr)}",
                  f"{color}/{layout.TOTAL}/{layout.total_name(expr, layout.COLORED)}"}
    for r in planted[planted["n_images"] > 0].itertuples():
        expr = DISPLAY_NAMES[r.expression]
        files |= {f"{layout.PLANTED}/{layout.planted_mean_name(expr)}", f"{layout.PLANTED}/{layout.planted_name(expr)}"}
    return files


def test_heatmaps_files_are_the_layouts(tiny_study):
    from test_heatmaps import fabricate_explanations, study_params

    fabricate_explanations(tiny_study, "inside")
    study_params(tiny_study)
    _invoke(tiny_study, "heatmaps")
    p = load_params(tiny_study / "params.yaml")
    hm = layout.heatmaps_dir(p)
    counts, planted = pd.read_csv(hm / layout.COUNTS), pd.read_csv(hm / layout.PLANTED_TRUTH)
    assert set(planted["expression"]) == set(EXPRESSIONS)
    assert _files(hm) == _expected_heatmap_files(p, counts, planted)
    assert layout.metrics_file("heatmaps").is_file()


def _fake_trainings(project: Path, history: str = "epoch,accuracy,loss\n0,0.4,1.5\n1,0.6,1.1\n") -> Params:
    """weinet folds 1-2 as train leaves them, as far as evaluate reads them."""
    import json

    from conftest import write_params

    p = load_params(write_params(project, {"train": {"models": ["weinet"], "folds": [1, 2]}}))
    for k in p.train.folds:
        d = layout.train_fold_dir(p, "weinet", k)
        d.mkdir(parents=True)
        (d / layout.FOLD_METRICS).write_text(json.dumps({
            "test_accuracy": 0.5, "test_macro_precision": 0.5, "test_macro_recall": 0.5, "test_macro_f1": 0.5,
            "pretrained": False, "n_test": 10}))
        (d / layout.HISTORY).write_text(history)
        (d / layout.PREDICTIONS).write_text(f"id,subject,label,pred,correct\na{k},s1,anger,fear,False\n")
    return p


def test_evaluate_files_are_the_layouts(project):
    p = _fake_trainings(project)
    _invoke(project, "evaluate", "--no-mlflow")
    out = layout.evaluate_dir(p)
    plots = {f"{sub}/{layout.cv_plot_name('weinet', k)}" for sub in (layout.CV_CURVES, layout.CV_CONFUSION)
             for k in p.train.folds}
    assert _files(out) == {MARKER, layout.CV_FOLDS, layout.CV_SUMMARY, layout.CV_PLOT, *plots}
    assert layout.metrics_file(layout.CV_METRICS).is_file()
    # What dvc.yaml's plots read: the curves in epoch order, each fold's own labels and predictions.
    curves = pd.read_csv(out / layout.CV_CURVES / layout.cv_plot_name("weinet", 2))
    assert curves.to_dict("list") == {"epoch": [0, 1], "loss": [1.5, 1.1], "accuracy": [0.4, 0.6]}
    confusion = pd.read_csv(out / layout.CV_CONFUSION / layout.cv_plot_name("weinet", 2))
    assert confusion.to_dict("list") == {"id": ["a2"], "label": ["anger"], "pred": ["fear"]}


def test_evaluate_names_a_history_it_cannot_plot(project):
    _fake_trainings(project, history="epoch,accuracy\n0,0.4\n")
    res = CliRunner().invoke(main, ["--params", str(project / "params.yaml"), "evaluate", "--no-mlflow"])
    assert res.exit_code != 0
    assert "weinet/fold1/history.csv: has no column(s) loss" in res.output
    assert not (project / "reports" / "cv").exists()  # nothing half-written


# ----------------------------------------------------------------------- no name spelled twice

# Modules that write or read stage outputs: their file and folder names come from fer_xai.layout.
WRITERS = [
    "stages/synth.py", "stages/prepare.py", "stages/split.py", "stages/train.py", "stages/evaluate.py",
    "stages/explain.py", "stages/masks.py", "stages/heatmaps.py", "stages/report.py", "stages/tune.py",
    "stages/compare.py", "preparation.py", "prepared.py", "faces/preprocess.py", "explain/store.py",
    "heatmaps/build.py", "compare/run.py", "compare/published.py", "compare/standardized.py",
    "report/build.py", "report/sections.py", "report/figures.py", "report/blocks.py",
    "synthface/generator.py", "training/tuned.py", "tuning/study.py", "tuning/plots.py", "tuning/trial.py",
    "stages/bench.py", "bench/run.py", "bench/canonical.py", "report/bench_section.py",
]
FILE_NAME = re.compile(r"^[^\s*]+\.(csv|png|json|npz|parquet|keras|txt|yaml|md|html|db)$")
NOT_OUTPUTS = {"dvc.lock", "params.yaml", "templates"}  # the project's own files, the report's templates


def _spelled_names(path: Path) -> list[str]:
    """String literals in ``path`` that name a file, or join a path (``folder / "by_cv"``)."""
    tree = ast.parse(path.read_text())
    joined = {id(side) for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)
              for side in (n.left, n.right)}
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value not in NOT_OUTPUTS:
            if FILE_NAME.match(n.value) or id(n) in joined:
                found.append(f"{path.relative_to(SRC)}:{n.lineno}: {n.value!r}")
        elif isinstance(n, ast.JoinedStr):
            tail = [v.value for v in n.values if isinstance(v, ast.Constant)][-1:]
            if id(n) in joined or (tail and FILE_NAME.match("x" + tail[0])):
                found.append(f"{path.relative_to(SRC)}:{n.lineno}: {ast.unparse(n)}")
    return found


def test_writers_take_their_file_names_from_the_layout():
    found = [hit for rel in WRITERS for hit in _spelled_names(SRC / rel)]
    assert not found, "file or folder names outside fer_xai.layout:\n" + "\n".join(found)


def test_layout_is_a_leaf():
    tree = ast.parse((SRC / "layout.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | \
               {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= {"__future__", "re", "pathlib", "typing", "paths", "config"}, imported
