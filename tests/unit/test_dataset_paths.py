"""Paths that could escape or repeat a dataset folder: symlink loops, manifest rows outside the
root, file names that are not valid UTF-8 (part of issue 13)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_xai.datasets import LayoutError, scan_dataset
from fer_xai.datasets.base import ScanResult, walk_files


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)).save(path)
    return path


def _looped_folders(root: Path) -> Path:
    """``happy/`` and ``sad/`` label folders, a loop back to the root and a second link to happy/."""
    _png(root / "happy" / "S01_a.png", 1)
    _png(root / "sad" / "S02_b.png", 2)
    (root / "happy" / "loop").symlink_to(root, target_is_directory=True)
    (root / "sad" / "happy_again").symlink_to(root / "happy", target_is_directory=True)
    return root


def test_walk_files_lists_each_file_once_and_reports_each_repeat_once(tmp_path):
    root = _looped_folders(tmp_path / "ds")
    result = ScanResult()
    files = walk_files(root, result)
    assert [p.relative_to(root).as_posix() for p in files] == ["happy/S01_a.png", "sad/S02_b.png"]
    assert sorted((Path(r.path).relative_to(root).as_posix(), r.reason) for r in result.rejections) == [
        ("happy/loop", "symlink_loop"), ("sad/happy_again", "repeated_folder")]


@pytest.mark.parametrize("adapter, options", [("folders", {}), ("tokens", {})])
def test_adapters_scan_a_looped_folder_once(tmp_path, adapter, options):
    root = _looped_folders(tmp_path / "ds")
    res = scan_dataset(root, "ds", adapter=adapter, options=options)
    assert sorted(r.path.name for r in res.records) == ["S01_a.png", "S02_b.png"]
    assert res.rejection_counts() == {"repeated_folder": 1, "symlink_loop": 1}


def _csv_root(root: Path, rows: str, manifest: str = "manifest.csv") -> Path:
    _png(root / "img" / "a.png", 1)
    (root / manifest).parent.mkdir(parents=True, exist_ok=True)
    (root / manifest).write_text("path,subject,label,landmarks,mask\nimg/a.png,s01,happy,,\n" + rows)
    return root


@pytest.mark.parametrize("row, needle", [
    ("../outside.png,s02,sad,,", "../outside.png"),
    ("img/../../outside.png,s02,sad,,", "img/../../outside.png"),
    ("{abs},s02,sad,,", "absolute"),
    ("img/a2.png,s02,sad,../lm.txt,", "../lm.txt"),
    ("img/a2.png,s02,sad,,/tmp/mask.png", "/tmp/mask.png"),
])
def test_manifest_rows_must_stay_inside_the_root(tmp_path, row, needle):
    outside = _png(tmp_path / "outside.png", 3)
    root = _csv_root(tmp_path / "ds", row.format(abs=outside) + "\n")
    _png(root / "img" / "a2.png", 4)
    with pytest.raises(LayoutError) as err:
        scan_dataset(root, "ds", adapter="csv")
    msg = str(err.value)
    assert str(root / "manifest.csv") in msg and "row 3" in msg and needle in msg
    assert "outside" in msg or "absolute" in msg


@pytest.mark.parametrize("manifest, needle", [
    ("{elsewhere}/manifest.csv", "is an absolute path"),
    ("../elsewhere/manifest.csv", "is outside the dataset folder"),
])
def test_manifest_option_must_stay_inside_the_root(tmp_path, manifest, needle):
    elsewhere = _csv_root(tmp_path / "elsewhere", "")
    root = tmp_path / "ds"
    _png(root / "img" / "a.png", 1)
    with pytest.raises(LayoutError, match=f"option manifest: .*{needle}"):
        scan_dataset(root, "ds", adapter="csv", options={"manifest": manifest.format(elsewhere=elsewhere)})


def test_manifest_in_a_subfolder_may_point_to_siblings_inside_the_root(tmp_path):
    root = tmp_path / "ds"
    _png(root / "img" / "a.png", 1)
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "faces.csv").write_text("path,subject,label\n../img/a.png,s01,happy\n")
    res = scan_dataset(root, "ds", adapter="csv", options={"manifest": "meta/faces.csv"})
    assert [r.path for r in res.records] == [root / "img" / "a.png"]


def test_display_name_escapes_bytes_that_are_not_utf8():
    from fer_xai.datasets.base import display_name

    odd = Path(os.fsdecode(b"/data/S01_\xff.png"))
    assert display_name(odd) == "/data/S01_\\xff.png"
    assert display_name("caf\u00e9/a.png") == "caf\u00e9/a.png"
    display_name(odd).encode("utf-8")  # printable and JSON-safe
