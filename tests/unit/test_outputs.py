"""No stage deletes what it did not write: the output guard and staged_dir (fer_xai.outputs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import write_params
from fer_xai.cli import main
from fer_xai.config import ParamsError, load_params
from fer_xai.outputs import MARKER, OutputGuard, UnsafeOutputError, staged_dir

# Every key of Params.output_claims that a user sets in params.yaml.
OUT_KEYS = ["synth.out_dir", "prepare.out_dir", "split.out_file", "train.out_dir", "evaluate.out_dir",
            "explain.out_dir", "masks.out_dir", "heatmaps.out_dir", "compare.out_dir", "report.out_dir",
            "tune.out_dir"]


def _precious(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "thesis.txt"
    f.write_text("three years of work\n")
    return f


def _masks(project: Path, *args: str):
    return CliRunner().invoke(main, [*args, "masks"], catch_exceptions=False)


def test_masks_out_on_a_users_folder_keeps_the_file(project, tmp_path):
    mine = _precious(tmp_path / "mine")
    res = CliRunner().invoke(main, ["masks", "--out", str(mine.parent)])
    assert res.exit_code != 0
    assert "--out" in res.output and str(mine.parent) in res.output and "thesis.txt" in res.output
    assert mine.read_text() == "three years of work\n"
    assert sorted(p.name for p in mine.parent.iterdir()) == ["thesis.txt"]


def test_masks_into_the_project_root_is_refused_before_any_work(project):
    _precious(project)
    (project / ".git").mkdir()
    before = sorted(p.name for p in project.iterdir())
    res = _masks(project, "-S", "masks.out_dir=.")
    assert res.exit_code != 0
    assert "masks.out_dir" in res.output and "project root" in res.output
    assert sorted(p.name for p in project.iterdir()) == before


@pytest.mark.parametrize("target", ["data/raw", "data/raw/ckplus", "data"])
def test_masks_into_the_raw_data_is_refused(project, target):
    ds = _precious(project / "data" / "raw" / "ckplus")
    res = _masks(project, "-S", f"masks.out_dir={target}")
    assert res.exit_code != 0 and "data.raw_dir" in res.output
    assert ds.is_file()


@pytest.mark.parametrize("key", OUT_KEYS)
@pytest.mark.parametrize("target", [".", "..", "/", "~", "data/raw"])
def test_every_output_key_rejects_the_project_home_root_and_raw_data(project, key, target):
    target = str(Path.home()) if target == "~" else target
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        load_params(project / "params.yaml", [f"{key}={target}"])


@pytest.mark.parametrize("key", [k for k in OUT_KEYS if k != "heatmaps.out_dir"])
def test_no_output_may_overlap_another_stages_output(project, key):
    with pytest.raises(ParamsError, match="overlaps"):
        load_params(project / "params.yaml", [f"{key}=heatmaps/{key.split('.')[0]}"])


def test_synth_alone_may_write_inside_raw_dir(project):
    load_params(project / "params.yaml", ["synth.out_dir=data/raw/other"])
    with pytest.raises(ParamsError, match="synth.out_dir.*data.raw_dir"):
        load_params(project / "params.yaml", ["synth.out_dir=data/raw"])


@pytest.mark.parametrize("key", ["report.html_name", "report.figures_dir"])
def test_report_names_cannot_escape_the_report_folder(project, key):
    with pytest.raises(ParamsError, match=key):
        load_params(project / "params.yaml", [f"{key}=../params.yaml"])


def test_stage_replaces_its_own_folder_and_keeps_old_results_on_failure(project):
    guard = OutputGuard(owner="test", key="out")
    out = project / "out"
    with staged_dir(out, guard) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (out / MARKER).is_file() and (out / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with staged_dir(out, guard) as tmp:
            (tmp / "a.txt").write_text("2")
            raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "1"
    with staged_dir(out, guard) as tmp:
        (tmp / "b.txt").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "b.txt"])
    assert [p.name for p in project.iterdir() if p.name.startswith(".out.")] == []


def test_a_folder_emptied_or_holding_only_the_stages_files_is_replaced(project):
    out = project / "fold1"
    out.mkdir()  # empty, e.g. after `dvc repro` removed the stage's outs
    guard = OutputGuard(owner="train", key="train.out_dir", known_names=frozenset({"model.keras"}))
    with staged_dir(out, guard):
        pass
    (out / MARKER).unlink()
    (out / "model.keras").write_text("restored by dvc checkout, without the marker")
    with staged_dir(out, guard) as tmp:
        (tmp / "model.keras").write_text("new")
    assert (out / "model.keras").read_text() == "new"
    (out / MARKER).unlink()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UnsafeOutputError, match="notes.txt"):
        with staged_dir(out, guard):
            pytest.fail("the guard must refuse before the caller's work")


def test_the_guard_is_checked_again_before_the_swap(project):
    out = project / "out"
    guard = OutputGuard(owner="test", key="out")
    with pytest.raises(UnsafeOutputError):
        with staged_dir(out, guard) as tmp:
            (tmp / "a.txt").write_text("1")
            _precious(out)  # someone put a file there while the stage ran
    assert (out / "thesis.txt").is_file() and not (out / "a.txt").exists()


def test_a_file_or_symlink_at_the_output_path_is_refused(project, tmp_path):
    guard = OutputGuard(owner="test", key="out")
    (project / "f").write_text("x")
    with pytest.raises(UnsafeOutputError, match="not a folder"):
        guard.check(project / "f")
    target = tmp_path / "elsewhere"
    _precious(target)
    (project / "link").symlink_to(target)
    with pytest.raises(UnsafeOutputError):
        guard.check(project / "link")
    assert (target / "thesis.txt").is_file()


def test_staging_leftovers_of_a_killed_process_are_cleaned_and_others_left(project):
    out = project / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    stale = project / f".out.{pid}.tmp"
    stale.mkdir()
    (stale / MARKER).write_text("written by fer-xai test\n")
    foreign = project / f".out.{pid}.old"
    _precious(foreign)  # the same pattern but not ours (no marker): never removed
    with staged_dir(out, OutputGuard(owner="test", key="out")):
        pass
    assert not stale.exists()
    assert (foreign / "thesis.txt").is_file()


def test_previous_results_moved_aside_by_a_killed_swap_are_put_back(project):
    out = project / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    aside = project / f".out.{pid}.old"  # killed between the two renames: out/ is gone
    aside.mkdir()
    (aside / MARKER).write_text("written by fer-xai test\n")
    (aside / "a.txt").write_text("previous")
    half = project / f".out.{pid}.tmp"
    half.mkdir()
    (half / MARKER).write_text("written by fer-xai test\n")
    with pytest.raises(RuntimeError):
        with staged_dir(out, OutputGuard(owner="test", key="out")):
            raise RuntimeError("this run fails too")
    assert (out / "a.txt").read_text() == "previous"
    assert not aside.exists() and not half.exists()


def test_a_staging_path_taken_by_a_users_folder_is_refused(project):
    taken = project / f".out.{os.getpid()}.tmp"
    _precious(taken)
    with pytest.raises(UnsafeOutputError, match="staging path"):
        with staged_dir(project / "out", OutputGuard(owner="test", key="out")):
            pass
    assert (taken / "thesis.txt").is_file()


def test_compare_published_out_on_a_users_folder_is_refused(project, tmp_path):
    mine = _precious(tmp_path / "results")
    res = CliRunner().invoke(main, ["compare", "--heatmaps-dir", str(tmp_path), "--masks-dir", str(tmp_path),
                                    "--out", str(mine.parent), "--no-mlflow"])
    assert res.exit_code != 0 and "--out" in res.output
    assert sorted(p.name for p in mine.parent.iterdir()) == ["thesis.txt"]


def test_params_with_unsafe_outputs_are_refused_by_every_stage(project):
    write_params(project, {"heatmaps": {"out_dir": "."}})
    for stage in ("synth", "prepare", "heatmaps", "report"):
        res = CliRunner().invoke(main, [stage])
        assert res.exit_code != 0 and "heatmaps.out_dir" in res.output, stage
