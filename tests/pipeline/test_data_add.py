"""``fer-xai data add/validate/adapters`` in a throw-away git + DVC project."""

from __future__ import annotations

import json
import logging
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


# ----------------------------------------------------- issue 13: no junk left, no garbage registered

REPO = Path(__file__).resolve().parents[2]

# `data add` in a child process that dies (SIGKILL, as on a power cut) right after the copy.
KILLED_AFTER_COPY = """
import os, shutil, signal, sys
real_copytree = shutil.copytree
def copy_then_die(*args, **kwargs):
    real_copytree(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
shutil.copytree = copy_then_die
from fer_xai.cli import main
main(sys.argv[1:])
"""


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_killed_copy_is_dvc_ignored_and_removed_by_the_next_add(repo, tmp_path, caplog):
    _dvc_repo(repo)
    shutil.copy(REPO / ".dvcignore", repo / ".dvcignore")  # the project's own rules
    src = make_jaffe(tmp_path / "jaffe")
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_COPY, "--params", str(repo / "params.yaml"),
                             "data", "add", "jaffe", str(src)], cwd=repo, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    raw = repo / "data" / "raw"
    leftovers = [p for p in raw.iterdir() if p.name.startswith(".jaffe.")]
    assert len(leftovers) == 1 and leftovers[0].is_dir() and not (raw / "jaffe").exists()

    # DVC's own ignore rules keep the half-copy out of data/raw's hash (prepare's dependency).
    rel = leftovers[0].relative_to(repo).as_posix()
    check = subprocess.run([sys.executable, "-m", "dvc", "check-ignore", rel], cwd=repo,
                           capture_output=True, text=True)
    assert check.returncode == 0 and rel in check.stdout, f"{rel} not dvc-ignored: {check.stdout}{check.stderr}"

    with caplog.at_level(logging.INFO, logger="fer_xai"):
        res = run(repo, "add", "jaffe", str(src), "--no-dvc")
    assert res.exit_code == 0, res.output
    assert not leftovers[0].exists() and (raw / "jaffe" / "jaffedbase").is_dir()
    assert f"removed {leftovers[0]}" in caplog.text


def test_cleanup_touches_only_this_projects_temp_folders_of_dead_processes(repo, tmp_path, caplog):
    from fer_xai.datasets.install import temp_folder

    raw = repo / "data" / "raw"
    dead = _dead_pid()
    stale = temp_folder(raw / "old_copy", "new", dead)
    swapped_out = temp_folder(raw / "ckplus", "old", dead)  # killed between the two renames
    kept = [
        temp_folder(raw / "running", "new", os.getpid()),  # a live process
        raw / f".elsewhere.new-otherhost-{dead}.tmp",       # another host's process
        raw / f".jaffe.tmp-{dead}",                         # not this pattern
        raw / f"visible.new-x-{dead}.tmp",                  # not hidden: not ours
        raw / "notes",
    ]
    for folder in (stale, swapped_out, *kept):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "f.txt").write_text("x")
    (raw / ".faces.validation.json.tmp").write_text("{}")

    with caplog.at_level(logging.INFO, logger="fer_xai"):
        res = run(repo, "add", "jaffe", str(make_jaffe(tmp_path / "jaffe")), "--no-dvc")
    assert res.exit_code == 0, res.output
    assert not stale.exists() and f"removed {stale}" in caplog.text
    # The previous version of a dataset whose swap was cut short is put back, not deleted.
    assert not swapped_out.exists() and (raw / "ckplus" / "sub" / "f.txt").is_file()
    assert f"restored {raw / 'ckplus'}" in caplog.text
    assert all((folder / "sub" / "f.txt").is_file() for folder in kept)
    assert (raw / ".faces.validation.json.tmp").is_file()


def test_copy_without_usable_images_is_removed_and_not_registered(repo, tmp_path):
    good = make_jaffe(tmp_path / "good")
    assert run(repo, "add", "faces", str(good), "--no-dvc").exit_code == 0
    params_before = (repo / "params.yaml").read_text()
    # Only images inside __MACOSX/: the source scans fine, but the copy leaves __MACOSX out.
    bad = tmp_path / "bad"
    _tiff(bad / "__MACOSX" / "happy" / "S01_a.tiff", 1)
    _tiff(bad / "__MACOSX" / "sad" / "S02_b.tiff", 2)
    res = CliRunner().invoke(main, ["--params", str(repo / "params.yaml"), "data", "add", "faces", str(bad),
                                    "--force", "--no-dvc", "--adapter", "folders", "-o", "label_level=1"])
    assert res.exit_code != 0
    assert "'faces'" in res.output and str(bad) in res.output and "no usable image" in res.output
    raw = repo / "data" / "raw"
    assert (raw / "faces" / "jaffedbase" / "KA.AN1.39.tiff").is_file(), "the previous copy must stay"
    assert sorted(p.name for p in raw.iterdir()) == ["faces", "faces.validation.json"]
    assert (repo / "params.yaml").read_text() == params_before


def test_symlink_loop_in_the_source_is_copied_once_and_reported(repo, tmp_path):
    src = make_jaffe(tmp_path / "jaffe")
    (src / "jaffedbase" / "loop").symlink_to(src, target_is_directory=True)
    res = CliRunner().invoke(main, ["--params", str(repo / "params.yaml"), "data", "add", "jaffe", str(src),
                                    "--no-dvc"])
    assert res.exit_code == 0, res.output
    dest = repo / "data" / "raw" / "jaffe"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.tiff")) == sorted(
        f"jaffedbase/{p.name}" for p in (src / "jaffedbase").glob("*.tiff"))
    report = json.loads((repo / "data" / "raw" / "jaffe.validation.json").read_text())
    assert report["n_images"] == 4 and report["rejections"]["by_reason"]["symlink_loop"] == 1
    assert [i["path"] for i in report["rejections"]["items"] if i["reason"] == "symlink_loop"] == [
        str(src / "jaffedbase" / "loop")]
    assert "symlink_loop" in res.output


def _odd_names(root: Path) -> Path:
    """A folders dataset with one usable and one rejected image whose names are not UTF-8."""
    _tiff(root / "happy" / "S01_a.tiff", 1)
    _tiff(root / "sad" / "S02_b.tiff", 2)
    _tiff(Path(os.fsdecode(os.fsencode(root / "happy") + b"/S03_\xfe.tiff")), 3)
    _tiff(Path(os.fsdecode(os.fsencode(root) + b"/\xff.tiff")), 4)
    return root


def test_file_names_that_are_not_utf8_are_copied_and_reported_escaped(repo, tmp_path):
    src = _odd_names(tmp_path / "odd")
    res = run(repo, "add", "odd", str(src), "--no-dvc")
    assert res.exit_code == 0, res.output
    dest = repo / "data" / "raw" / "odd"
    assert sorted(os.listdir(os.fsencode(dest / "happy"))) == [b"S01_a.tiff", b"S03_\xfe.tiff"]
    text = (repo / "data" / "raw" / "odd.validation.json").read_text(encoding="utf-8")
    report = json.loads(text)
    assert report["n_images"] == 3
    assert report["rejections"]["items"] == [{"path": "\\xff.tiff", "reason": "unknown_label",
                                              "detail": "not inside a label folder"}]
    assert "\\xff.tiff" in res.output


def test_names_dvc_cannot_track_are_refused_before_anything_changes(repo, tmp_path):
    _dvc_repo(repo)
    src = _odd_names(tmp_path / "odd")
    res = CliRunner().invoke(main, ["--params", str(repo / "params.yaml"), "data", "add", "odd", str(src)])
    assert res.exit_code != 0
    assert "not valid UTF-8" in res.output and "S03_\\xfe.tiff" in res.output and "--no-dvc" in res.output
    raw = repo / "data" / "raw"
    assert not raw.exists() or not any(raw.iterdir())
    assert (repo / "params.yaml").read_text() == PARAMS


# ----------------------------------------------------- params.yaml edits: validated before writing


def test_registration_that_would_make_params_invalid_leaves_it_byte_identical(repo, tmp_path):
    from fer_xai.datasets.register import register_dataset
    from fer_xai.errors import FerXaiError

    # Two entries of one name: invalid as a file, valid for this call through an -S override.
    text = PARAMS.replace("      adapter: csv          # the embedded set\n",
                          "      adapter: csv          # the embedded set\n    - name: synthetic\n")
    (repo / "params.yaml").write_text(text)
    before = (repo / "params.yaml").read_bytes()
    res = CliRunner().invoke(main, ["--params", str(repo / "params.yaml"),
                                    "-S", "data.datasets=[{name: synthetic, adapter: csv}]",
                                    "data", "add", "jaffe", str(make_jaffe(tmp_path / "jaffe")), "--no-dvc"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "registering 'jaffe' made it invalid, left unchanged" in res.output
    assert "duplicate dataset names in data.datasets" in res.output
    assert (repo / "params.yaml").read_bytes() == before
    with pytest.raises(FerXaiError, match=r"(?s)registering 'other'.*duplicate dataset names"):
        register_dataset(repo / "params.yaml", "other", "folders", {})
    assert (repo / "params.yaml").read_bytes() == before
    assert sorted(p.name for p in repo.iterdir()) == ["data", "dvc.yaml", "params.yaml"]  # no temp file


def test_atomic_writers_replace_whole_files_and_keep_them_on_a_failed_check(tmp_path):
    target = tmp_path / "sub" / "report.json"
    paths.write_json_atomic(target, {"b": [1, 2], "a": "é"})
    assert target.read_text() == '{\n  "a": "\\u00e9",\n  "b": [\n    1,\n    2\n  ]\n}\n'
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert target.stat().st_mode == plain.stat().st_mode  # the umask's mode, not a temp file's 0600
    paths.write_bytes_atomic(tmp_path / "b.bin", b"\x00\xff", fsync=True)
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    seen = []

    def refuse(candidate: Path) -> None:
        seen.append(candidate)
        assert candidate.parent == target.parent and candidate.name.startswith(".report.json.")
        assert candidate.name.endswith(".tmp") and candidate.read_text() == "new"
        raise ValueError("refused")

    before = target.read_bytes()
    with pytest.raises(ValueError, match="refused"):
        paths.write_text_atomic(target, "new", check=refuse)
    assert target.read_bytes() == before and not seen[0].exists()
    paths.write_text_atomic(target, "new", check=seen.append)
    assert target.read_text() == "new" and seen[1] != seen[0]  # a fresh temporary name each time
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]
