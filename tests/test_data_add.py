"""``fer-xai data add/validate/adapters`` in a throw-away git + DVC project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fer_xai import paths
from fer_xai.cli import main
from fer_xai.config import load_params

PARAMS = """\
# Parameters of the data-add test project (this comment must survive)
data:                       # datasets read by prepare
  raw_dir: data/raw         # where datasets live
  include_neutral: false
  datasets:
    - name: synthetic
      adapter: csv          # the embedded set

prepare:                    # crop settings
  size: 160
"""


def _tiff(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def make_jaffe(root: Path, names=("KA.AN1.39.tiff", "KA.HA1.29.tiff", "KL.SU2.160.tiff",
                                  "YM.DI1.55.tiff", "KM.NE1.11.tiff", "odd.tiff")) -> Path:
    for i, name in enumerate(names):
        _tiff(root / "jaffedbase" / name, i)
    (root / "jaffedbase" / "README").write_text("JAFFE\n")
    return root


@pytest.fixture
def repo(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "params.yaml").write_text(PARAMS)
    (root / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.setenv("FER_XAI_ROOT", str(root))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.delenv("FER_XAI_PARAMS", raising=False)
    paths.repo_root.cache_clear()
    yield root
    paths.repo_root.cache_clear()


def _dvc_repo(root: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True,
                   env={**os.environ, "DVC_NO_ANALYTICS": "1"})


def run(root: Path, *args: str):
    return CliRunner().invoke(main, ["--params", str(root / "params.yaml"), "data", *args],
                              catch_exceptions=False)


def test_add_copies_tracks_validates_and_registers(repo, tmp_path):
    _dvc_repo(repo)
    src = make_jaffe(tmp_path / "downloads" / "jaffe")
    res = run(repo, "add", "jaffe", str(src))
    assert res.exit_code == 0, res.output

    dest = repo / "data" / "raw" / "jaffe"
    assert sorted(p.name for p in (dest / "jaffedbase").iterdir()) == sorted(
        p.name for p in (src / "jaffedbase").iterdir())
    assert not list((repo / "data" / "raw").glob(".jaffe.*")), "temporary folder left behind"
    assert (repo / "data" / "raw" / "jaffe.dvc").is_file()
    assert "/jaffe" in (repo / "data" / "raw" / ".gitignore").read_text()

    report = json.loads((repo / "data" / "raw" / "jaffe.validation.json").read_text())
    assert report["ok"] and report["adapter"] == "jaffe"
    assert report["n_images"] == 4 and report["n_subjects"] == 3
    assert report["labels"] == {"anger": 1, "disgust": 1, "fear": 0, "happiness": 1, "sadness": 0, "surprise": 1}
    assert report["subjects"] == {"KA": 2, "KL": 1, "YM": 1}
    assert report["rejections"]["by_reason"] == {"bad_name": 1, "excluded_label": 1}
    assert report["duplicates"] == []
    assert "jaffe: 4 images, 3 subjects" in res.output and "bad_name" in res.output

    text = (repo / "params.yaml").read_text()
    for comment in ("# Parameters of the data-add test project", "# where datasets live",
                    "# the embedded set", "# crop settings"):
        assert comment in text
    assert "\n\nprepare:" in text  # the blank line before the next section is kept
    params = load_params(repo / "params.yaml")
    assert [(d.name, d.adapter, d.options) for d in params.data.datasets] == [
        ("synthetic", "csv", {}), ("jaffe", "jaffe", {})]

    again = CliRunner().invoke(main, ["--params", str(repo / "params.yaml"), "data", "add", "jaffe", str(src)])
    assert again.exit_code != 0
    assert "already exists" in again.output and "--force" in again.output and str(dest) in again.output

    # --force replaces the copy and updates (not duplicates) the params entry.
    forced = run(repo, "add", "jaffe", str(src), "--force", "--no-dvc", "-o", "include_neutral=true")
    assert forced.exit_code == 0, forced.output
    params = load_params(repo / "params.yaml")
    assert [d.name for d in params.data.datasets] == ["synthetic", "jaffe"]
    assert params.data.datasets[1].options == {"include_neutral": True}
    assert json.loads((repo / "data" / "raw" / "jaffe.validation.json").read_text())["labels"]["neutral"] == 1

    val = run(repo, "validate", "jaffe")
    assert val.exit_code == 0, val.output
    assert json.loads((repo / "data" / "raw" / "jaffe.validation.json").read_text())["n_images"] == 5


def test_add_outside_dvc_repo_duplicates_and_link(repo, tmp_path):
    src = make_jaffe(tmp_path / "jaffe_dup")
    shutil.copy(src / "jaffedbase" / "KA.AN1.39.tiff", src / "jaffedbase" / "KA.AN2.40.tiff")
    res = run(repo, "add", "jaffe", str(src), "--no-register")
    assert res.exit_code == 0, res.output
    assert "not a DVC repository" in res.output
    report = json.loads((repo / "data" / "raw" / "jaffe.validation.json").read_text())
    assert report["duplicates"] == [["jaffedbase/KA.AN1.39.tiff", "jaffedbase/KA.AN2.40.tiff"]]
    assert "synthetic" in (repo / "params.yaml").read_text() and "jaffe" not in (repo / "params.yaml").read_text()

    linked = run(repo, "add", "jaffe_link", str(src), "--link", "--adapter", "jaffe")
    assert linked.exit_code == 0, linked.output
    assert (repo / "data" / "raw" / "jaffe_link").is_symlink()
    assert "not tracked by DVC" in linked.output


@pytest.mark.parametrize("setup, needle", [
    (lambda p: p / "nope", "no such folder"),
    (lambda p: (_tiff(p / "mystery" / "a.png", 1), p / "mystery")[1], "no known dataset layout"),
    (lambda p: make_jaffe(p / "neutral_only", names=("KA.NE1.1.tiff", "KA.NE2.2.tiff")), "zero usable images"),
])
def test_add_errors_name_the_folder_and_write_nothing(repo, tmp_path, setup, needle):
    src = setup(tmp_path)
    res = CliRunner().invoke(main, ["--params", str(repo / "params.yaml"), "data", "add", "x", str(src)])
    assert res.exit_code != 0
    assert needle in res.output and str(src) in res.output
    raw = repo / "data" / "raw"
    assert not raw.exists() or not any(raw.iterdir())
    assert (repo / "params.yaml").read_text() == PARAMS


def test_add_with_wrong_adapter_or_option(repo, tmp_path):
    src = make_jaffe(tmp_path / "jaffe")
    res = CliRunner().invoke(main, ["--params", str(repo / "params.yaml"), "data", "add", "x", str(src),
                                    "--adapter", "ckplus"])
    assert res.exit_code != 0 and "does not look like the 'ckplus' layout" in res.output
    res = CliRunner().invoke(main, ["--params", str(repo / "params.yaml"), "data", "add", "x", str(src),
                                    "-o", "apex_frames=3"])
    assert res.exit_code != 0 and "unknown option" in res.output


def test_register_into_params_without_datasets_keeps_default(tmp_path, monkeypatch):
    root = tmp_path / "p"
    root.mkdir()
    (root / "params.yaml").write_text("# only a comment\nprepare:\n  size: 128\n")
    (root / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.setenv("FER_XAI_ROOT", str(root))
    paths.repo_root.cache_clear()
    try:
        src = make_jaffe(tmp_path / "jaffe")
        res = run(root, "add", "jaffe", str(src), "--no-dvc", "-o", "include_neutral=yes")
        assert res.exit_code == 0, res.output
        params = load_params(root / "params.yaml")
        assert [d.name for d in params.data.datasets] == ["synthetic", "jaffe"]
        assert params.data.datasets[1].options == {"include_neutral": True}
        assert "# only a comment" in (root / "params.yaml").read_text()
    finally:
        paths.repo_root.cache_clear()


def test_adapters_listing(repo):
    res = run(repo, "adapters")
    assert res.exit_code == 0
    for name in ("ckplus", "bu4dfe", "jaffe", "wsefep", "fega", "folders", "csv", "tokens"):
        assert f"{name}" in res.output
    assert "apex_frames" in res.output and "include_neutral" in res.output


def test_parse_options_types():
    from fer_xai.stages.data_add import parse_options

    assert parse_options(["apex_frames=3", "apex_window=0.25", "include_neutral=yes",
                          "subject_pattern=[A-Z]+\\d", "manifest=faces.csv", "label_pattern=a=b"]) == {
        "apex_frames": 3, "apex_window": 0.25, "include_neutral": True,
        "subject_pattern": "[A-Z]+\\d", "manifest": "faces.csv", "label_pattern": "a=b"}
    with pytest.raises(Exception, match="key=value"):
        parse_options(["novalue"])
