"""Dataset adapters on small fixture trees built in each dataset's published layout."""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest
from PIL import Image

from fer_xai.datasets import (
    ADAPTERS,
    AUTO_ORDER,
    AdapterOptionError,
    LayoutError,
    RawRecord,
    detect_adapter,
    read_landmarks_txt,
    scan_dataset,
)
from fer_xai.datasets.bu4dfe import apex_indices
from fer_xai.datasets.wsefep import read_xlsx_rows

# --------------------------------------------------------------------------- fixture builders

_SEED = [0]


def img(path: Path, size: int = 24) -> Path:
    """A small noise image (unique content) in the format given by the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _SEED[0] += 1
    arr = np.random.default_rng(_SEED[0]).integers(0, 256, (size, size), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def landmarks_array(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(100, 500, (68, 2)), 4)


def write_landmarks(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"   {x:.7e}   {y:.7e}\n" for x, y in arr))


def make_ckplus(root: Path, nested: bool = False) -> Path:
    """S005/001 disgust (3 frames, landmarks), S005/002 unlabelled, S010/001 happy (4 frames),
    S010/002 contempt, S011/004 surprise with a broken landmark file."""
    images = root / "cohn-kanade-images"
    emotion = root / ("Emotion_labels/Emotion" if nested else "Emotion")
    lms = root / "Landmarks"
    seqs = {("S005", "001"): (3, 3), ("S005", "002"): (2, None), ("S010", "001"): (4, 5),
            ("S010", "002"): (3, 2), ("S011", "004"): (2, 7)}
    for (subj, seq), (n, code) in seqs.items():
        for i in range(1, n + 1):
            stem = f"{subj}_{seq}_{i:08d}"
            img(images / subj / seq / f"{stem}.png")
            write_landmarks(lms / subj / seq / f"{stem}_landmarks.txt", landmarks_array(hash(stem) % 1000))
        if code is not None:
            (emotion / subj / seq).mkdir(parents=True, exist_ok=True)
            (emotion / subj / seq / f"{subj}_{seq}_{n:08d}_emotion.txt").write_text(f"   {code:.7e}\n")
    # S005/001 peak landmarks with a known value; S011's peak landmark file is broken (67 rows).
    write_landmarks(lms / "S005/001/S005_001_00000003_landmarks.txt", landmarks_array(42))
    write_landmarks(lms / "S011/004/S011_004_00000002_landmarks.txt", landmarks_array(1)[:67])
    return root


def make_jaffe(root: Path) -> Path:
    d = root / "jaffedbase"
    for name in ("KA.AN1.39.tiff", "KA.HA2.30.TIFF", "KL.SU1.160.tif", "YM.DI3.55.tiff",
                 "KM.NE1.11.tiff", "KA.XX1.1.tiff", "bogus.tiff"):
        img(d / name)
    (d / "README").write_text("The JAFFE images may be used only for non-commercial research.\n")
    (d / "notes.txt").write_text("notes\n")
    return root


def make_bu4dfe(root: Path, container: bool = False) -> Path:
    base = root / "BU_4DFE" if container else root
    for subj, seq, n in (("F001", "Angry", 10), ("F001", "Happy", 7), ("M002", "Surprise", 5),
                         ("M002", "Blink", 3)):
        for i in range(n):
            img(base / subj / seq / f"{i:03d}.jpg")
    (base / "M002" / "Sad").mkdir(parents=True)
    (base / "F001" / "Angry" / "000.wrl").write_text("#VRML V2.0 utf8\n")
    return root


def write_xlsx(path: Path, rows: list[list]) -> None:
    """A minimal .xlsx (strings as shared strings, numbers as values) written without openpyxl."""
    shared: list[str] = []
    sheet_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if isinstance(value, (int, float)):
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            else:
                shared.append(str(value))
                cells.append(f'<c r="{ref}" t="s"><v>{len(shared) - 1}</v></c>')
        sheet_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel_ns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr(
            "xl/workbook.xml",
            f'<workbook {ns} {rel_ns}><sheets><sheet name="Arkusz1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="worksheet"/></Relationships>',
        )
        zf.writestr(
            "xl/sharedStrings.xml", f"<sst {ns}>" + "".join(f"<si><t>{escape(s)}</t></si>" for s in shared) + "</sst>"
        )
        zf.writestr(
            "xl/worksheets/sheet1.xml", f"<worksheet {ns}><sheetData>{''.join(sheet_rows)}</sheetData></worksheet>"
        )


WSEFEP_HEADER = [
    "Displayer ID",
    "Picture ID",
    "Male/ Female",
    "Display",
    "Agreement (%)",
    "Putity   (0-1)",
    "Intensity (0-1)",
    "N",
    "FACS ",
]
WSEFEP_ROWS = [
    ["AD", "AD_7885.jpg", "F", "neutral", 53, "x", "x", 17, "7B"],
    ["AD", "AD_7950.jpg", "F", "joy", 92, 0.77, 0.72, 36, "1A+2A+6D+12D+25D+26B"],
    ["AD", "AD_8286.jpg", "F", "disgust", 80, 0.66, 0.73, 30, "4B+7B+9D+10C+17C+58D"],
    ["MK1", "MK1_0007.jpg", "F", "neutral", 63, "x", "x", 27, "0"],
    ["MK1", "MK1_0087.jpg", "F", "joy", 97, 0.81, 0.74, 38, "6E+7C+12E+16C+25E"],
    ["MK1", "MK1_0411.jpg", "F", "disgust", 89, 0.79, 0.76, 19, "6C+7C+9E+17C"],
    ["XY", "XY_0001.jpg", "M", "anger", 90, 0.7, 0.7, 20, "4D"],  # listed, no image
]


def make_wsefep(root: Path, sheet: str = "xlsx") -> Path:
    d = root / "WSEFEP_v101_hq"
    for row in WSEFEP_ROWS[:-1]:
        img(d / row[1])
    img(d / "ZZ_0001.jpg")  # not in the norms sheet
    if sheet == "xlsx":
        write_xlsx(d / "WSEFEP - norms & FACS.xlsx", [WSEFEP_HEADER, *WSEFEP_ROWS])
    else:
        import csv

        with (d / "WSEFEP - norms & FACS - Arkusz1.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows([WSEFEP_HEADER, *WSEFEP_ROWS])
    return d


def make_fega(root: Path) -> Path:
    d = root / "FEGA"
    img(d / "S01" / "S01_happy.jpg")
    img(d / "S01" / "S01_angry_2.jpg")
    img(d / "S02" / "S02_sad.png")
    img(d / "S02" / "S02_neutral.png")
    img(d / "S02" / "S02_happy_sad.png")
    img(d / "S03" / "face.png")
    return d


def make_folders(root: Path) -> Path:
    img(root / "happy" / "S01_1.png")
    img(root / "happy" / "S02_1.png")
    img(root / "Angry" / "S02_3.png")
    img(root / "Angry" / "1234.png")
    img(root / "contempt" / "S03_1.png")
    img(root / "neutral" / "S01_0.png")
    img(root / "misc" / "S01_x.png")
    img(root / "stray.png")
    (root / "happy" / "notes.txt").write_text("x")
    (root / "happy" / "data.bin").write_bytes(b"\0\1")
    return root


def make_csv(root: Path) -> Path:
    img(root / "img" / "a.png")
    img(root / "img" / "b.png")
    img(root / "img" / "c.png")
    img(root / "img" / "d.png")
    img(root / "img" / "f.png")
    img(root / "img" / "m_a.png")
    write_landmarks(root / "lm" / "a.txt", landmarks_array(7))
    (root / "lm" / "bad.txt").write_text("1 2\n3 4\n")
    img(root / "elsewhere" / "e.png")
    (root / "manifest.csv").write_text(
        "path,subject,label,intensity,aus,landmarks,mask\n"
        "img/a.png,s01,happiness,0.8,6+12,lm/a.txt,img/m_a.png\n"
        "img/b.png,s01,contempt,1.0,,,\n"
        "img/c.png,s02,bored,1.0,,,\n"
        "img/missing.png,s02,anger,1.0,,,\n"
        "img/a.png,s01,happiness,0.8,,,\n"
        "img/d.png,s02,Surprised,0.6,1+2+5+26,lm/bad.txt,img/no_mask.png\n"
        "img/../elsewhere/e.png,s03,sad,1.0,,,\n"
        "img/f.png,,anger,1,,,\n"
    )
    return root


def by_name(records: list[RawRecord]) -> dict[str, RawRecord]:
    return {r.path.name: r for r in records}


def reasons(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in result.rejections:
        out.setdefault(r.reason, []).append(Path(r.path).name)
    return {k: sorted(v) for k, v in out.items()}


# --------------------------------------------------------------------------- CK+


@pytest.mark.parametrize("nested", [False, True])
def test_ckplus_peak_frames_landmarks_and_rejections(tmp_path, nested):
    root = make_ckplus(tmp_path / "ck", nested=nested)
    res = scan_dataset(root, "ckplus")
    assert res.adapter == "ckplus"
    recs = by_name(res.records)
    assert {n: (r.subject, r.label) for n, r in recs.items()} == {
        "S005_001_00000003.png": ("S005", "disgust"),
        "S010_001_00000004.png": ("S010", "happiness"),
        "S011_004_00000002.png": ("S011", "surprise"),
    }
    assert all(r.path.is_absolute() and r.dataset == "ckplus" for r in res.records)
    peak = recs["S005_001_00000003.png"]
    assert peak.landmarks.shape == (68, 2)
    np.testing.assert_allclose(peak.landmarks, landmarks_array(42), rtol=1e-6)
    assert peak.meta["emotion_code"] == 3 and peak.meta["frame"] == 3 and peak.meta["peak"]
    assert recs["S011_004_00000002.png"].landmarks is None  # broken file -> kept without
    rej = reasons(res)
    assert rej == {"excluded_label": ["S010_002_00000003.png"], "bad_landmarks": ["S011_004_00000002_landmarks.txt"]}
    assert res.info["unlabelled_sequences"] == 1
    assert res.info["labelled_sequences"] == 4


def test_ckplus_include_neutral_adds_first_frames(tmp_path):
    root = make_ckplus(tmp_path / "ck")
    res = scan_dataset(root, "ck", adapter="ckplus", options={"include_neutral": True})
    neutral = sorted(r.path.name for r in res.records if r.label == "neutral")
    assert neutral == [
        "S005_001_00000001.png",
        "S010_001_00000001.png",
        "S010_002_00000001.png",
        "S011_004_00000001.png",
    ]
    assert len(res.records) == 7
    first = by_name(res.records)["S005_001_00000001.png"]
    assert first.landmarks is not None and first.meta["peak"] is False


# --------------------------------------------------------------------------- JAFFE


def test_jaffe_names_codes_and_rejections(tmp_path):
    root = make_jaffe(tmp_path / "jaffe")
    res = scan_dataset(root, "jaffe")
    assert res.adapter == "jaffe"
    got = {n: (r.subject, r.label) for n, r in by_name(res.records).items()}
    assert got == {
        "KA.AN1.39.tiff": ("KA", "anger"),
        "KA.HA2.30.TIFF": ("KA", "happiness"),
        "KL.SU1.160.tif": ("KL", "surprise"),
        "YM.DI3.55.tiff": ("YM", "disgust"),
    }
    assert by_name(res.records)["KL.SU1.160.tif"].meta == {"code": "SU", "repetition": 1, "index": 160}
    assert reasons(res) == {
        "excluded_label": ["KM.NE1.11.tiff"],
        "unknown_label": ["KA.XX1.1.tiff"],
        "bad_name": ["bogus.tiff"],
    }
    assert res.info["ignored_files"] == 2  # README, notes.txt: quiet
    with_neutral = scan_dataset(root, "jaffe", options={"include_neutral": "true"})
    assert by_name(with_neutral.records)["KM.NE1.11.tiff"].label == "neutral"


# --------------------------------------------------------------------------- BU-4DFE


def test_apex_indices():
    assert apex_indices(10) == [5]
    assert apex_indices(1) == [0]
    assert apex_indices(0) == []
    assert apex_indices(10, 3, 0.4) == [3, 5, 7]
    assert apex_indices(100, 5, 0.2) == [40, 45, 50, 55, 60]
    assert apex_indices(3, 5, 1.0) == [0, 1, 2]


@pytest.mark.parametrize("container", [False, True])
def test_bu4dfe_middle_frames(tmp_path, container):
    root = make_bu4dfe(tmp_path / "bu", container=container)
    res = scan_dataset(root, "bu4dfe")
    assert res.adapter == "bu4dfe"
    got = sorted((r.subject, r.label, r.path.parent.name, r.path.name) for r in res.records)
    assert got == [
        ("F001", "anger", "Angry", "005.jpg"),
        ("F001", "happiness", "Happy", "003.jpg"),
        ("M002", "surprise", "Surprise", "002.jpg"),
    ]
    rej = {(r.reason, Path(r.path).name) for r in res.rejections}
    assert rej == {("unknown_label", "Blink"), ("empty_sequence", "Sad")}
    assert res.info["ignored_files"] == 1  # the .wrl


def test_bu4dfe_several_apex_frames_and_neutral(tmp_path):
    root = make_bu4dfe(tmp_path / "bu")
    res = scan_dataset(
        root, "bu", adapter="bu4dfe", options={"apex_frames": 3, "apex_window": 0.4, "include_neutral": True}
    )
    angry = sorted(r.path.name for r in res.records if r.label == "anger")
    assert angry == ["003.jpg", "005.jpg", "007.jpg"]
    neutral = sorted((r.subject, r.path.parent.name, r.path.name) for r in res.records if r.label == "neutral")
    assert neutral == [("F001", "Angry", "000.jpg"), ("F001", "Happy", "000.jpg"), ("M002", "Surprise", "000.jpg")]
    with pytest.raises(AdapterOptionError, match="apex_window"):
        scan_dataset(root, "bu", adapter="bu4dfe", options={"apex_window": 2})


# --------------------------------------------------------------------------- WSEFEP


@pytest.mark.parametrize("sheet", ["xlsx", "csv"])
def test_wsefep_norms_sheet(tmp_path, sheet):
    root = make_wsefep(tmp_path, sheet)
    res = scan_dataset(root, "wsefep")
    assert res.adapter == "wsefep"
    got = {n: (r.subject, r.label) for n, r in by_name(res.records).items()}
    assert got == {
        "AD_7950.jpg": ("AD", "happiness"),
        "AD_8286.jpg": ("AD", "disgust"),
        "MK1_0087.jpg": ("MK1", "happiness"),
        "MK1_0411.jpg": ("MK1", "disgust"),
    }
    meta = by_name(res.records)["AD_7950.jpg"].meta
    assert meta["agreement"] == 92 and meta["purity"] == pytest.approx(0.77)
    assert meta["gender"] == "F" and meta["n_judges"] == 36 and meta["facs"].startswith("1A+2A")
    assert reasons(res) == {
        "excluded_label": ["AD_7885.jpg", "MK1_0007.jpg"],
        "missing_file": ["XY_0001.jpg"],
        "not_in_norms": ["ZZ_0001.jpg"],
    }


def test_xlsx_reader_roundtrip(tmp_path):
    write_xlsx(tmp_path / "t.xlsx", [["a", "b & c"], [1, "x"], ["", 2.5]])
    assert read_xlsx_rows(tmp_path / "t.xlsx") == [["a", "b & c"], ["1", "x"], ["", "2.5"]]


def test_wsefep_without_sheet_falls_back_to_label_folders(tmp_path):
    root = tmp_path / "wsefep_sorted"
    img(root / "Happiness" / "AD_7950.jpg")
    img(root / "Disgust" / "MK1_0411.jpg")
    img(root / "Neutral" / "MK1_0007.jpg")
    res = scan_dataset(root, "wsefep")
    assert res.adapter == "wsefep" and res.info["fallback"] == "tokens"
    assert sorted((r.subject, r.label) for r in res.records) == [("AD", "happiness"), ("MK1", "disgust")]
    assert reasons(res) == {"excluded_label": ["MK1_0007.jpg"]}


# --------------------------------------------------------------------------- FEGA (best guess)


def test_fega_subject_folders_and_words(tmp_path):
    root = make_fega(tmp_path)
    res = scan_dataset(root, "fega")
    assert res.adapter == "fega"
    assert sorted((r.subject, r.label, r.path.name) for r in res.records) == [
        ("S01", "anger", "S01_angry_2.jpg"),
        ("S01", "happiness", "S01_happy.jpg"),
        ("S02", "sadness", "S02_sad.png"),
    ]
    assert reasons(res) == {
        "excluded_label": ["S02_neutral.png"],
        "ambiguous_label": ["S02_happy_sad.png"],
        "unknown_label": ["face.png"],
    }


def test_fega_flat_names_and_label_pattern(tmp_path):
    root = tmp_path / "fega_flat"
    img(root / "S01_happy.jpg")
    img(root / "S02_surprised_1.jpg")
    res = scan_dataset(root, "fega")
    assert sorted((r.subject, r.label) for r in res.records) == [("S01", "happiness"), ("S02", "surprise")]
    coded = tmp_path / "FEGA_coded"
    img(coded / "P07-HA.jpg")
    img(coded / "P08-SA.jpg")
    res = scan_dataset(
        coded, "fega", adapter="fega", options={"label_pattern": r"-(?P<label>[A-Z]{2})\.", "min_token_length": 2}
    )
    assert sorted((r.subject, r.label) for r in res.records) == [("P07", "happiness"), ("P08", "sadness")]


# --------------------------------------------------------------------------- generic


def test_folders_adapter(tmp_path):
    root = make_folders(tmp_path / "faces")
    res = scan_dataset(root, "faces")
    assert res.adapter == "folders"
    assert sorted((r.subject, r.label, r.path.name) for r in res.records) == [
        ("1234", "anger", "1234.png"),
        ("S01", "happiness", "S01_1.png"),
        ("S02", "anger", "S02_3.png"),
        ("S02", "happiness", "S02_1.png"),
    ]
    assert reasons(res) == {
        "excluded_label": ["S01_0.png", "S03_1.png"],
        "unknown_label": ["S01_x.png", "stray.png"],
        "not_an_image": ["data.bin"],
    }
    custom = scan_dataset(root, "faces", adapter="folders", options={"subject_pattern": r"(?P<subject>S\d+)_"})
    assert "1234.png" in reasons(custom)["no_subject"]


def test_folders_subject_then_label_level(tmp_path):
    root = tmp_path / "nested"
    img(root / "alice" / "happy" / "001.png")
    img(root / "bob" / "sad" / "001.png")
    res = scan_dataset(
        root,
        "n",
        adapter="folders",
        options={"label_level": 1, "subject_source": "path", "subject_pattern": "^(?P<subject>[^/]+)/"},
    )
    assert sorted((r.subject, r.label) for r in res.records) == [("alice", "happiness"), ("bob", "sadness")]


def test_csv_manifest(tmp_path):
    root = make_csv(tmp_path / "synthetic")
    res = scan_dataset(root, "synthetic")
    assert res.adapter == "csv"
    recs = by_name(res.records)
    assert sorted((r.subject, r.label, n) for n, r in recs.items()) == [
        ("s01", "happiness", "a.png"),
        ("s02", "surprise", "d.png"),
        ("s03", "sadness", "e.png"),
    ]
    a = recs["a.png"]
    np.testing.assert_allclose(a.landmarks, landmarks_array(7), rtol=1e-6)
    assert a.mask_path == root / "img" / "m_a.png"
    assert a.meta == {"intensity": 0.8, "aus": "6+12"}
    assert recs["d.png"].landmarks is None and recs["d.png"].mask_path is None
    assert reasons(res) == {
        "excluded_label": ["b.png"],
        "unknown_label": ["c.png"],
        "missing_file": ["missing.png"],
        "duplicate_row": ["a.png"],
        "bad_landmarks": ["bad.txt"],
        "missing_mask": ["no_mask.png"],
        "no_subject": ["f.png"],
    }


# --------------------------------------------------------------------------- detection & errors


@pytest.mark.parametrize(
    "builder, expected",
    [
        (lambda p: make_ckplus(p / "x"), "ckplus"),
        (lambda p: make_jaffe(p / "x"), "jaffe"),
        (lambda p: make_bu4dfe(p / "x", container=True), "bu4dfe"),
        (lambda p: make_wsefep(p), "wsefep"),
        (lambda p: make_fega(p), "fega"),
        (lambda p: make_folders(p / "x"), "folders"),
        (lambda p: make_csv(p / "x"), "csv"),
    ],
)
def test_auto_detection(tmp_path, builder, expected):
    assert detect_adapter(builder(tmp_path)).name == expected


def test_unknown_layout_raises_layout_error(tmp_path):
    root = tmp_path / "mystery"
    img(root / "a.png")
    img(root / "b" / "c.png")
    with pytest.raises(LayoutError) as err:
        scan_dataset(root, "mystery")
    msg = str(err.value)
    assert str(root) in msg
    for name in AUTO_ORDER:
        assert f"- {name}:" in msg


def test_named_adapter_mismatch_and_bad_options(tmp_path):
    root = make_jaffe(tmp_path / "jaffe")
    with pytest.raises(LayoutError, match=r"does not look like the 'ckplus' layout(.|\n)*expected: cohn-kanade-images"):
        scan_dataset(root, "jaffe", adapter="ckplus")
    with pytest.raises(AdapterOptionError, match="unknown option.*apex_frames"):
        scan_dataset(root, "jaffe", adapter="jaffe", options={"apex_frames": 3})
    with pytest.raises(AdapterOptionError, match="unknown adapter 'nope'"):
        scan_dataset(root, "jaffe", adapter="nope")
    with pytest.raises(AdapterOptionError, match="include_neutral"):
        scan_dataset(root, "jaffe", options={"include_neutral": "maybe"})
    with pytest.raises(LayoutError):
        scan_dataset(tmp_path / "does-not-exist", "x")


def test_raw_record_is_hashable_and_registry_complete(tmp_path):
    lm = np.zeros((68, 2))
    a = RawRecord("d", "s", "anger", tmp_path / "a.png", landmarks=lm, meta={"x": 1})
    b = RawRecord("d", "s", "anger", tmp_path / "a.png", landmarks=None, meta={"x": 2})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert set(AUTO_ORDER) <= set(ADAPTERS) and "tokens" in ADAPTERS


def test_read_landmarks_txt(tmp_path):
    arr = landmarks_array(3)
    write_landmarks(tmp_path / "l.txt", arr)
    np.testing.assert_allclose(read_landmarks_txt(tmp_path / "l.txt"), arr, rtol=1e-6)
    (tmp_path / "c.txt").write_text("".join(f"{x},{y}\n" for x, y in arr))
    np.testing.assert_allclose(read_landmarks_txt(tmp_path / "c.txt"), arr)
    (tmp_path / "short.txt").write_text("1 2\n")
    with pytest.raises(ValueError, match="68"):
        read_landmarks_txt(tmp_path / "short.txt")
