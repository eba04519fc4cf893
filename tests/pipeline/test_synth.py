"""fer-xai synth: determinism, file layout, landmark/mask faithfulness, dlib-likeness, learnability.

The slow tests measure the generator's promises: dlib finds and landmarks its faces like
photographs, a tiny CNN learns the expressions on held-out subjects, and the same CNN is at
chance once the AU regions are replaced by the subject's neutral face (no non-AU shortcut).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_xai.labels import EXPRESSION_AUS, EXPRESSIONS
from fer_xai.synthface.generator import MANIFEST_COLUMNS, Config, generate, image_plan, render_subject

TINY = Config(seed=7, n_subjects=2, intensities=(0.6, 1.0), include_neutral=True, image_size=192)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "synthetic"
    generate(TINY, out, workers=1, progress=False)
    return out


def _manifest(root: Path) -> list[dict]:
    with (root / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_same_params_give_identical_bytes_serial_or_parallel(tiny, tmp_path):
    again = tmp_path / "again"
    generate(TINY, again, workers=2, progress=False)
    a, b = _files(tiny), _files(again)
    assert a.keys() == b.keys()
    meta_a, meta_b = (json.loads(x.pop("generator.json")) for x in (a, b))
    assert [k for k in a if a[k] != b[k]] == []
    meta_a.pop("elapsed_seconds"), meta_b.pop("elapsed_seconds")
    assert meta_a == meta_b
    # A different seed gives a different dataset.
    other = tmp_path / "other"
    generate(Config(**{**TINY.__dict__, "seed": 8}), other, workers=1, progress=False, contact_sheet=False)
    assert (other / "images" / "s001_anger_060.png").read_bytes() != a["images/s001_anger_060.png"]


def test_manifest_and_files_are_consistent(tiny):
    rows = _manifest(tiny)
    with (tiny / "manifest.csv").open() as fh:
        assert fh.readline().strip() == ",".join(MANIFEST_COLUMNS)
    assert len(rows) == TINY.n_subjects * len(image_plan(TINY)) == 2 * (6 * 2 + 1)
    assert {r["subject"] for r in rows} == {"s001", "s002"}
    on_disk = {str(p.relative_to(tiny)) for p in (tiny / "images").iterdir()}
    assert on_disk == {r["path"] for r in rows}
    for r in rows:
        img = Image.open(tiny / r["path"])
        assert img.size == (192, 192) and img.mode == "RGB"
        mask = np.asarray(Image.open(tiny / r["mask"]))
        assert mask.shape == (192, 192) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        pts = np.loadtxt(tiny / r["landmarks"])
        assert pts.shape == (68, 2)
        if r["label"] == "neutral":
            assert r["aus"] == "" and mask.max() == 0
        else:
            assert r["aus"] == "+".join(map(str, EXPRESSION_AUS[r["label"]]))
            assert float(r["intensity"]) in TINY.intensities
    meta = json.loads((tiny / "generator.json").read_text())
    assert meta["n_images"] == len(rows) and meta["counts"]["anger"] == 4 and meta["counts"]["neutral"] == 2
    assert len(meta["base_photos"]) == 2 and "numpy" in meta["libraries"] and meta["params"]["seed"] == 7
    assert (tiny / "contact_sheet.png").is_file()
    assert not list(tiny.parent.glob(".synthetic.*")), "temporary folders left behind"


def _inside(mask: np.ndarray, pt: np.ndarray) -> bool:
    x, y = np.round(pt).astype(int)
    return bool(mask[y, x])


def test_landmarks_and_masks_mark_the_moving_parts(tiny):
    for r in _manifest(tiny):
        pts = np.loadtxt(tiny / r["landmarks"])
        assert (pts > 0).all() and (pts < 192).all()
        iod = np.linalg.norm(pts[42:48].mean(0) - pts[36:42].mean(0))
        assert 40 < iod < 65, iod
        mask = np.asarray(Image.open(tiny / r["mask"])) > 0
        aus = {int(a) for a in r["aus"].split("+") if a}
        if not aus:
            continue
        assert 0.02 < mask.mean() < 0.45
        assert not mask[:8].any() and not mask[:, :8].any(), "background/frame edge must not change"
        if 26 in aus:  # jaw drop: the opened mouth and the chin
            assert _inside(mask, pts[66]) and _inside(mask, pts[8])
        if aus & {1, 2, 4}:  # brow actions
            assert _inside(mask, pts[21]) and _inside(mask, pts[22])
        if 12 in aus or 15 in aus:  # lip corners
            assert _inside(mask, pts[48]) and _inside(mask, pts[54])
        if 9 in aus:
            assert _inside(mask, pts[31]) and _inside(mask, pts[35])
        if aus == {6, 12}:  # happiness leaves brows and forehead alone
            assert not _inside(mask, pts[19]) and not _inside(mask, pts[24])


def test_nothing_changes_outside_the_mask():
    """Expression image vs its neutral twin (same pose, light, noise): equal outside the mask."""
    cfg = Config(seed=3, n_subjects=1, intensities=(1.0,), image_size=192)
    for _, expression, _, r in render_subject(cfg, 0):
        diff = np.abs(r.image.astype(int) - r.neutral.astype(int)).max(axis=2)
        outside = r.mask == 0
        assert diff[outside].max() <= 6, expression  # below the mask's 4/255 threshold + rounding
        assert diff[outside].mean() < 0.2, expression
        assert diff[~outside].mean() > 3, expression  # and inside, the expression is visible


def test_everything_but_the_expression_is_label_independent():
    """Identity and per-image jitter come from the subject's RNG in a fixed order; rendering any
    label with the same draws gives the same neutral twin, so outside the AU mask (previous
    test) an image carries no label information."""
    from fer_xai.synthface.identity import make_subject
    from fer_xai.synthface.render import draw_jitter, render
    from fer_xai.synthface.template import build_template

    tpl = build_template(192)
    rng = np.random.default_rng([5, 0])
    subject = make_subject(tpl, rng, 0)
    jit = draw_jitter(rng, 192)
    twins = [render(tpl, subject, e, k, jit).neutral for e in EXPRESSIONS for k in (0.6, 1.0)]
    assert all(np.array_equal(t, twins[0]) for t in twins)
    assert np.array_equal(render(tpl, subject, None, 0.0, jit).image, twins[0])


def test_failed_generation_leaves_previous_output(tmp_path, monkeypatch):
    from fer_xai.outputs import MARKER
    from fer_xai.synthface import generator

    out = tmp_path / "synthetic"
    out.mkdir()
    (out / MARKER).write_text("written by fer-xai synth\n")  # an earlier generation's output
    (out / "keep.txt").write_text("old")

    def boom(*a, **k):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(generator, "_write_manifest", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        generator.generate(Config(n_subjects=2, intensities=(1.0,)), out, workers=1, progress=False)
    assert (out / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_stage_cli_writes_dataset_and_mlflow_run(project):
    import mlflow
    from click.testing import CliRunner

    from fer_xai.cli import main

    res = CliRunner().invoke(
        main, ["-S", "synth.n_subjects=2", "-S", "synth.intensities=[1.0]", "-S", "synth.workers=1", "synth"]
    )
    assert res.exit_code == 0, res.output
    out = project / "data" / "raw" / "synthetic"
    assert len(_manifest(out)) == 12
    runs = mlflow.search_runs(experiment_names=["fer-xai"])
    assert len(runs) == 1 and runs.iloc[0]["metrics.n_images"] == 12
    assert runs.iloc[0]["params.n_subjects"] == "2"


# ----------------------------------------------------------------------------------- slow


@pytest.mark.slow
@pytest.mark.dlib
def test_dlib_detects_and_landmarks_the_faces():
    from fer_xai.synthface.base_faces import dlib_landmarks
    from fer_xai.synthface.landmarks import landmark_error_iod

    cfg = Config(seed=1234, n_subjects=8)
    found, errors = 0, []
    for i in range(cfg.n_subjects):
        for *_, r in render_subject(cfg, i):
            pts, _ = dlib_landmarks(r.image)
            if pts is not None:
                found += 1
                errors.append(landmark_error_iod(pts, r.landmarks))
    rate = found / (cfg.n_subjects * len(image_plan(cfg)))
    errors = np.array(errors)
    print(f"dlib detection rate {rate:.3f}, landmark error/IOD mean {errors.mean():.4f} "
          f"p95 {np.percentile(errors, 95):.4f}")
    assert rate >= 0.95
    assert errors.mean() < 0.07 and np.percentile(errors, 95) < 0.10


def _subject_arrays(cfg: Config, index: int, size: int):
    """Aligned gray crops of one subject: as generated, and with its AU regions erased."""
    import cv2

    from fer_xai.faces.align import CropGeometry, alignment_matrix, warp_image

    geom = CropGeometry(size, 2.2, 0.75)
    recs = list(render_subject(cfg, index))
    # Union of all this subject's masks, dilated: the region is the same for every label.
    union = np.zeros((cfg.image_size, cfg.image_size), np.uint8)
    for *_, r in recs:
        union |= r.mask
    union = cv2.dilate(union, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))[..., None] > 0
    out = []
    for _, expression, _, r in recs:
        gray = cv2.cvtColor(r.image, cv2.COLOR_RGB2GRAY)
        erased = cv2.cvtColor(np.where(union, r.neutral, r.image), cv2.COLOR_RGB2GRAY)
        # The erased copy is aligned on the neutral landmarks: eye centres move with AU5/6/7,
        # and the crop must not smuggle that back in.
        a = warp_image(gray, alignment_matrix(r.landmarks, geom), size)
        b = warp_image(erased, alignment_matrix(r.neutral_landmarks, geom), size)
        out.append((a, b, EXPRESSIONS.index(expression), index))
    return out


def _held_out_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, epochs: int) -> float:
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    blocks = []
    for f in (16, 32, 64):
        blocks += [L.Conv2D(f, 3, padding="same"), L.BatchNormalization(momentum=0.8), L.ReLU(), L.MaxPooling2D()]
    model = keras.Sequential([
        keras.Input(x.shape[1:]), *blocks,
        L.Conv2D(64, 3, padding="same"), L.BatchNormalization(momentum=0.8), L.ReLU(),
        L.GlobalAveragePooling2D(), L.Dropout(0.3), L.Dense(6, activation="softmax"),
    ])
    steps = epochs * int(np.ceil(train.sum() / 32))
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, steps)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[train], y[train], epochs=epochs, batch_size=32, verbose=0)
    pred = np.argmax(model.predict_on_batch(x[~train]), axis=1)
    return float((pred == y[~train]).mean())


@pytest.mark.slow
def test_tiny_cnn_learns_expressions_but_not_without_au_regions():
    from joblib import Parallel, delayed

    cfg = Config(seed=1234, n_subjects=36)
    size = 64
    per_subject = Parallel(n_jobs=2)(delayed(_subject_arrays)(cfg, i, size) for i in range(cfg.n_subjects))
    a, b, y, s = (np.array(v) for v in zip(*[row for rows in per_subject for row in rows]))

    def standardise(imgs):  # per image: global brightness/contrast carry nothing either way
        f = imgs.astype(np.float32)[..., None] / 255.0
        return (f - f.mean(axis=(1, 2), keepdims=True)) / (f.std(axis=(1, 2), keepdims=True) + 1e-3)

    train = s < 27  # subjects 28..36 are never seen in training
    acc = _held_out_accuracy(standardise(a), y, train, epochs=25)
    acc_erased = _held_out_accuracy(standardise(b), y, train, epochs=25)
    print(f"held-out accuracy {acc:.3f}; with AU regions erased {acc_erased:.3f} (chance 0.167)")
    assert acc >= 0.85
    assert acc_erased <= 0.30
