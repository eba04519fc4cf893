"""Neutral twins: synth writes each face's neutral twin without changing any other file, and prepare
aligns it with the face's own transform (pixel correspondence, what the bench's causal check needs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from fer_xai.synthface.generator import Config, generate

# The decoded pixels of images/ and masks/ of this dataset, from the generator as it was before the
# neutral twins were written: a changed RNG stream or render would change the demo's data.
GOLDEN = Config(seed=3, n_subjects=2, intensities=(1.0,), include_neutral=True, image_size=96)
GOLDEN_PIXELS_SHA256 = "e50add42ae44ad07ffdb563de2fb3bb77a423c91a0f76071cedbf79486b36f49"


def _pixels_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((root / "images").glob("*.png")) + sorted((root / "masks").glob("*.png")):
        a = np.asarray(Image.open(p))
        h.update(p.name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def test_neutral_twins_leave_the_expressive_images_unchanged(tmp_path):
    out = tmp_path / "synth"
    generate(GOLDEN, out, workers=1, progress=False, contact_sheet=False)
    assert _pixels_digest(out) == GOLDEN_PIXELS_SHA256
    import csv

    rows = list(csv.DictReader((out / "manifest.csv").open()))
    for r in rows:
        face = np.asarray(Image.open(out / r["path"]), np.int16)
        twin = np.asarray(Image.open(out / r["neutral"]), np.int16)
        mask = np.asarray(Image.open(out / r["mask"])) > 0
        assert twin.shape == face.shape
        if r["label"] == "neutral":
            assert np.array_equal(twin, face)
        else:  # same pose, light and noise: only the AU region differs
            diff = np.abs(face - twin).max(axis=2)
            assert diff[~mask].mean() < 0.2 and diff[~mask].max() <= 8 and diff[mask].mean() > 3


def test_prepare_aligns_the_twin_with_the_face_transform(tiny_study_template):
    from fer_xai.prepared import load_prepared

    ps = load_prepared(tiny_study_template / "data" / "prepared")
    rows = ps.manifest
    assert (rows["neutral"].str.len() > 0).all()
    faces, _ = ps.faces(rows["id"], 64)
    twins = ps.neutrals(rows["id"], 64)
    inside, outside = [], []
    for i, (_, r) in enumerate(rows.iterrows()):
        mask = np.asarray(Image.open(ps.root / r["mask"])) > 127
        d = np.abs(faces[i].astype(np.int16) - twins[i].astype(np.int16))
        outside.append(d[~mask].mean())
        inside.append(d[mask].mean())
    # Misaligned twins would differ everywhere (edges of eyes, nose, hair line).
    assert np.mean(outside) < 1.0 and np.mean(inside) > 3 * np.mean(outside)


def test_neutrals_name_faces_without_twins(tmp_path):
    import pandas as pd
    import pytest

    from fer_xai.prepared import MANIFEST_COLUMNS, PreparedSet

    row = {c: "" for c in MANIFEST_COLUMNS} | {"id": "a", "image": "a.png", "size": 64, "landmarks": [0.0] * 136}
    ps = PreparedSet(tmp_path, pd.DataFrame([row]))
    with pytest.raises(KeyError, match="no neutral twin for face"):
        ps.neutrals(["a"], 32)
