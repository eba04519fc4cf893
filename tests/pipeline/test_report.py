"""`fer-xai report`: one self-contained HTML page; every figure it references exists."""

from __future__ import annotations

import base64
import logging
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_xai.compare import metrics as M
from fer_xai.config import Params
from fer_xai.report import png_bytes_ok
from helpers.pipeline_fixtures import write_cv, write_heatmaps, write_masks, write_planted_truth

SECTIONS = ["overview", "cv", "masks", "heatmaps", "tables", "best-worst", "dendrograms", "threshold-free",
            "planted", "bench", "provenance"]


class Page(HTMLParser):
    """Images, links, sections (id -> classes) and text of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.sections: dict[str, str] = {}
        self.chunks: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "section":
            self.sections[a.get("id", "")] = a.get("class") or ""

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def check_figures(html: Path) -> Page:
    """Every <img> is a PNG data URI that decodes, or a relative file that exists; every
    relative link points to an existing file."""
    page = Page(html.read_text(encoding="utf-8"))
    for src in page.images:
        if src.startswith("data:"):
            head, _, payload = src.partition(",")
            assert head == "data:image/png;base64", head
            assert png_bytes_ok(base64.b64decode(payload, validate=True)), "undecodable embedded PNG"
        else:
            assert not src.startswith(("http:", "https:", "/")), f"not self-contained: {src}"
            assert (html.parent / src).is_file(), f"missing figure file {src}"
    for href in page.links:
        if href.startswith("#") or "://" in href:
            continue
        assert (html.parent / href).is_file(), f"broken link {href}"
    return page


@pytest.fixture
def study(project):
    """A project with every input of the report: CV summary, masks, heatmaps, comparison, and the
    explainer bench over LIME alone without its model probes (no trained models here)."""
    from fer_xai.bench.run import run_bench
    from fer_xai.config import load_params
    from fer_xai.stages.compare import compare_pipeline

    (project / "params.yaml").write_text("train: {models: [silnet, weinet], folds: [1, 2, 3]}\n"
                                        "compare: {bootstrap_samples: 100}\n"
                                        "explain: {methods_enabled: []}\n")
    write_cv(project)
    write_masks(project)
    write_heatmaps(project)
    write_planted_truth(project)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.UndefinedMetricWarning)
        compare_pipeline(load_params())
        run_bench(load_params(), probe=False)
    return project


def test_report_of_a_full_study(study):
    from fer_xai.cli import main

    res = CliRunner().invoke(main, ["report"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "MLflow run" in res.output and "missing inputs" not in res.output
    html = study / "reports" / "report.html"
    page = check_figures(html)
    assert [s for s in page.sections] == SECTIONS
    assert not any("missing" in c for c in page.sections.values()), page.sections
    assert all(src.startswith("data:image/png;base64,") for src in page.images)  # self-contained
    assert len(page.images) >= 8
    figures = sorted(p.name for p in (study / "reports" / "report_figures").glob("*.png"))
    for name in ("cv_accuracy.png", "masks.png", "heatmaps_by_net.png", "barplot_Avg.png", "dendrograms.png",
                 "intervals.png"):
        assert name in figures, figures
    linked = {Path(h).name for h in page.links if h.startswith("report_figures/")}
    assert linked == set(figures)  # every PNG next to the page is the one embedded
    text = page.text
    for phrase in ("Table 3", "Table 4", "Table 5", "SilNet", "WeiNet", "Avg. (model) IoU", "cophenetic",
                   "relevance mass", "bootstrap", "image", "AU9, AU15", "git commit", "DVC data version",
                   "random init (3/3 folds)", "correlation: pearson"):
        assert phrase in text, phrase
    assert "missing:" not in text
    import mlflow

    runs = mlflow.search_runs(experiment_names=["fer-xai"], output_format="list",
                              filter_string="tags.`fer_xai.stage` = 'report'")
    assert len(runs) == 1
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id, "report")}
    assert "report/report.html" in arts and "report/report_figures" in arts


def test_report_without_inputs_says_what_to_run(project):
    from fer_xai.stages.report import run

    result = run(Params())
    html = result["html"]
    page = check_figures(html)
    assert list(page.sections) == SECTIONS
    text = page.text
    for cmd in ("fer-xai evaluate", "fer-xai masks", "fer-xai heatmaps", "fer-xai compare", "fer-xai bench"):
        assert f"run `{cmd}`" in text, cmd
    for sid in ("cv", "masks", "heatmaps", "tables", "best-worst", "dendrograms", "threshold-free", "planted",
                "bench"):
        assert page.sections[sid] == "missing", sid
    assert result["sections"]["provenance"] == "ok" and page.sections["provenance"] == ""
    assert "unknown (no" in text  # no training metrics: pretraining unknown, and said so
    assert page.images == []


def test_report_partial_inputs(project):
    """Masks and heatmaps only (before compare has run): those sections are complete."""
    from fer_xai.stages.report import run

    write_masks(project)
    write_heatmaps(project)
    result = run(Params())
    page = check_figures(result["html"])
    assert page.sections["masks"] == "" and page.sections["heatmaps"] == ""
    assert page.sections["tables"] == "missing" and page.sections["cv"] == "missing"
    assert "Not available" in page.text  # no planted_truth.csv: a real dataset
    assert len(page.images) >= 2


@pytest.mark.filterwarnings("ignore:Query string argument")  # SQLite ignores the test's password=
def test_report_hides_credentials_of_the_tracking_store_and_optuna_storage(project, monkeypatch, caplog, tmp_path):
    """A password in MLFLOW_TRACKING_URI or tune.storage reaches neither the page, MLflow, nor the log."""
    import mlflow

    from fer_xai.cli import main
    from fer_xai.config import load_params
    from fer_xai.stages.report import run

    (project / "params.yaml").write_text("tune: {storage: 'postgresql://tuner:secret@db.example:5432/optuna'}\n")
    # A store that works and carries a secret: SQLite ignores the query, the redactor must not.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}?password=secret"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", "0" * 32)  # an unknown launcher run: warned about, with the URI
    with caplog.at_level(logging.INFO):
        res = CliRunner().invoke(main, ["report"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    html = (project / "reports" / "report.html").read_text(encoding="utf-8")
    assert "postgresql://tuner:***@db.example:5432/optuna" in html and "password=***" in html
    client = mlflow.MlflowClient(uri)
    [logged] = client.search_runs([client.get_experiment_by_name("fer-xai").experiment_id])
    assert "password=***" in caplog.text  # the launcher warning names the store, redacted
    for where, text in (("html", html), ("output", res.output), ("log", caplog.text),
                        ("params", repr(logged.data.params)), ("tags", repr(logged.data.tags))):
        assert "secret" not in text, where

    # A server database as the tracking store: only the page is built (no server here).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://mlflow:secret@tracking.example/mlflow")
    page = run(load_params())["html"].read_text(encoding="utf-8")
    assert "postgresql://mlflow:***@tracking.example/mlflow" in page and "secret" not in page
