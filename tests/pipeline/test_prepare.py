"""`fer-xai prepare` on a small csv-layout dataset of real faces plus every kind of bad input."""

import csv
import json

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.conftest import write_params

from fer_xai import preparation
from fer_xai.config import load_params
from fer_xai.faces.align import CropGeometry, align_face, eye_centres, inter_ocular
from fer_xai.prepared import load_prepared, scale_landmarks
from fer_xai.stages import prepare

LABELS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]


def _head(gray, dx=0, dy=0):
    return gray[30 + dy:300 + dy, 90 + dx:360 + dx].copy()


def _build_dataset(root, gray, rgb):
    """6 good faces (one per label, 3 subjects) in various encodings, plus bad files."""
    root.mkdir(parents=True)
    rows = []

    def add(name, subject, label, mask=""):
        rows.append({"path": name, "subject": subject, "label": label, "mask": mask})

    for i, lab in enumerate(LABELS):
        img = _head(gray, dx=3 * i, dy=2 * i)
        subj = f"s{i // 2 + 1}"
        if i == 0:  # 16-bit grayscale
            Image.fromarray(img.astype(np.uint16) * 257).save(root / f"f{i}.png")
        elif i == 1:  # RGBA
            Image.fromarray(_head(rgb[..., :3], 3, 2)).convert("RGBA").save(root / f"f{i}.png")
        elif i == 2:  # palette
            Image.fromarray(_head(rgb[..., :3], 6, 4)).convert("P").save(root / f"f{i}.png")
        elif i == 3:  # TIFF, like JAFFE
            Image.fromarray(img).save(root / f"f{i}.tiff")
        else:
            Image.fromarray(img).save(root / f"f{i}.png")
        name = f"f{i}.tiff" if i == 3 else f"f{i}.png"
        mask = np.zeros_like(img)
        mouth = align_face(img, CropGeometry(128, 3.2, 0.7)).source_landmarks[48:68]
        x0, y0 = np.floor(mouth.min(axis=0)).astype(int)
        x1, y1 = np.ceil(mouth.max(axis=0)).astype(int)
        mask[y0:y1 + 1, x0:x1 + 1] = 255  # a box on the mouth, to be carried through alignment
        Image.fromarray(mask).save(root / f"m{i}.png")
        add(name, subj, lab, f"m{i}.png")
    (root / "corrupt.png").write_bytes((root / "f4.png").read_bytes()[:300])
    add("corrupt.png", "s4", "anger")
    (root / "text.png").write_text("not an image at all")
    add("text.png", "s4", "fear")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(root / "noise.png")
    add("noise.png", "s4", "sadness")
    Image.fromarray(np.hstack([_head(gray), _head(gray)])).save(root / "two.png")
    add("two.png", "s4", "surprise")
    Image.fromarray(cv2.resize(_head(gray), (40, 40))).save(root / "tiny.png")
    add("tiny.png", "s4", "happiness")
    Image.fromarray(_head(gray)).save(root / "contempt.png")
    add("contempt.png", "s4", "contempt")
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "subject", "label", "mask"])
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def dataset_project(project, astronaut_gray, astronaut_rgb):
    _build_dataset(project / "data" / "raw" / "faces", astronaut_gray, astronaut_rgb)
    path = write_params(project, {
        "data": {"datasets": [{"name": "faces", "adapter": "csv"}]},
        "prepare": {"size": 128, "workers": 1},
    })
    return project, load_params(path)


def test_prepare_keeps_good_faces_and_records_every_rejection(dataset_project):
    root, params = dataset_project
    summary = prepare.run(params)
    out = root / "data" / "prepared"
    ps = load_prepared(out)
    m = ps.manifest
    assert sorted(m["label"]) == sorted(LABELS)
    assert set(m["subject"]) == {"s1", "s2", "s3"}
    assert (m["landmarks_source"] == "dlib").all() and (m["det_score"] > 0).all()
    rej = pd.read_csv(out / "rejected.csv")
    reasons = dict(zip(rej["path"].map(lambda p: p.rsplit("/", 1)[-1]), rej["reason"]))
    assert reasons == {
        "corrupt.png": "corrupt", "text.png": "not_an_image", "noise.png": "no_face",
        "two.png": "multiple_faces", "tiny.png": "too_small", "contempt.png": "excluded_label",
    }
    assert summary["n_prepared"] == 6 and summary["n_rejected"] == 6
    assert summary["rejected_by_reason"]["no_face"] == 1
    assert json.loads((root / "metrics" / "prepare.json").read_text())["n_prepared"] == 6
    assert (out / "contact_sheet.png").is_file()
    assert not list(root.glob("data/.*tmp*"))

    lms = ps.landmarks()
    for (_, row), lm in zip(m.iterrows(), lms):
        img = cv2.imread(str(ps.image_path(row)), cv2.IMREAD_UNCHANGED)
        assert img.shape == (128, 128) and img.dtype == np.uint8
        left, right = eye_centres(lm)
        assert abs(left[1] - right[1]) < 0.05 and inter_ocular(lm) == pytest.approx(128 / 3.2, rel=1e-3)
        mask = cv2.imread(str(ps.mask_path(row)), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(mask)) <= {0, 255}
        ys, xs = np.nonzero(mask)
        # The box was around the mouth: it must still be around the mouth landmarks.
        mouth = lm[48:68].mean(axis=0)
        assert np.linalg.norm([xs.mean() - mouth[0], ys.mean() - mouth[1]]) < 3


def test_landmarks_scale_exactly_with_resize(dataset_project):
    root, params = dataset_project
    prepare.run(params)
    ps = load_prepared(root / "data" / "prepared")
    lm = ps.landmarks()[0]
    # Resizing by an integer factor up then the landmark of a marked pixel stays on it.
    img = np.zeros((128, 128), np.uint8)
    x, y = np.round(lm[30]).astype(int)
    img[y, x] = 255
    big = cv2.resize(img, (256, 256), interpolation=cv2.INTER_NEAREST)
    ys, xs = np.nonzero(big)
    mapped = scale_landmarks(np.array([[x, y]], np.float32), 128, 256)[0]
    assert abs(xs.mean() - mapped[0]) < 0.51 and abs(ys.mean() - mapped[1]) < 0.51


def test_dataset_with_no_usable_image_fails_and_keeps_previous_output(dataset_project, astronaut_gray):
    root, params = dataset_project
    prepare.run(params)
    before = (root / "data" / "prepared" / "manifest.parquet").read_bytes()
    bad = root / "data" / "raw" / "bad"
    bad.mkdir()
    (bad / "x.png").write_text("nope")
    (bad / "manifest.csv").write_text("path,subject,label\nx.png,s1,anger\n")
    params2 = load_params(write_params(root, {
        "data": {"datasets": [{"name": "faces", "adapter": "csv"}, {"name": "bad", "adapter": "csv"}]},
        "prepare": {"size": 128, "workers": 1},
    }))
    with pytest.raises(preparation.PrepareError, match=r"\['bad'\].*no usable face"):
        prepare.run(params2)
    assert (root / "data" / "prepared" / "manifest.parquet").read_bytes() == before
    assert not list((root / "data").glob(".prepared.tmp*"))


def test_missing_or_unknown_layout_is_a_clear_error(project):
    params = load_params(write_params(project, {"data": {"datasets": [{"name": "ghost"}]}}))
    with pytest.raises(preparation.PrepareError, match="ghost.*does not exist"):
        prepare.run(params)
    (project / "data" / "raw" / "odd").mkdir(parents=True)
    (project / "data" / "raw" / "odd" / "readme.txt").write_text("hi")
    params = load_params(write_params(project, {"data": {"datasets": [{"name": "odd"}]}}))
    with pytest.raises(preparation.PrepareError, match="odd"):
        prepare.run(params)


def test_parallel_workers_give_the_same_result(dataset_project, monkeypatch):
    root, params = dataset_project
    prepare.run(params)
    a = load_prepared(root / "data" / "prepared").manifest
    imgs_a = {r: (root / "data" / "prepared" / r).read_bytes() for r in a["image"]}
    p2 = load_params(write_params(root, {
        "data": {"datasets": [{"name": "faces", "adapter": "csv"}]},
        "prepare": {"size": 128, "workers": 2},
    }))
    monkeypatch.setattr(preparation, "MIN_PARALLEL_JOBS", 1)  # force the process pool
    prepare.run(p2)
    b = load_prepared(root / "data" / "prepared").manifest
    pd.testing.assert_frame_equal(a, b)
    for r in b["image"]:
        assert (root / "data" / "prepared" / r).read_bytes() == imgs_a[r]
