"""`fer-xai prepare` on hostile input: decompression bombs and oversized images, file names that
are not UTF-8, names whose ids would clash, EXIF-rotated photos, and large images whose faces
are detected on a reduced copy."""

import os
import struct
import zlib

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.conftest import write_params

from fer_xai import images, preparation
from fer_xai.config import PrepareParams, load_params
from fer_xai.datasets import RawRecord
from fer_xai.faces import dlib_models
from fer_xai.faces.preprocess import prepare_face
from fer_xai.images import ImageReadError, read_gray
from fer_xai.prepared import MANIFEST_COLUMNS, REJECTED_COLUMNS, load_prepared
from fer_xai.stages import prepare


def _head(gray, dx=0):
    return gray[30:300, 90 + dx:360 + dx].copy()  # 270 x 270, one frontal face


def _blank_png(path, width, height):
    """A valid black 8-bit grayscale PNG, compressed row by row: a 14000 px square is ~200 KB on
    disk and never exists uncompressed in memory."""
    z = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 + black pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _folders_project(project, prepare_opts=None):
    """A `folders`-layout dataset ``faces`` (``happiness/<files>``) and params reading it."""
    folder = project / "data" / "raw" / "faces" / "happiness"
    folder.mkdir(parents=True)
    params = {
        "data": {"datasets": [{"name": "faces", "adapter": "folders"}]},
        "prepare": {"size": 64, "workers": 1, **(prepare_opts or {})},
    }
    return folder, lambda: load_params(write_params(project, params))


def _rejections(project):
    rej = pd.read_csv(project / "data" / "prepared" / "rejected.csv")
    return dict(zip(rej["path"].map(lambda p: p.rsplit("/", 1)[-1]), rej["reason"]))


# ------------------------------------------------------------------ 1: oversized images


def test_decompression_bomb_is_rejected_as_too_large_from_its_header(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    _blank_png(bomb, 14000, 14000)  # over Pillow's own limit: Image.open itself refuses it
    with pytest.raises(ImageReadError) as info:
        read_gray(bomb)
    assert info.value.reason == "too_large" and "bomb.png" in str(info.value)
    big = tmp_path / "big.png"
    _blank_png(big, 400, 300)
    # Our limit is checked on the header: nothing may be decoded.
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a too-large image"))
    with pytest.raises(ImageReadError) as info:
        read_gray(big, max_pixels=100_000)
    assert info.value.reason == "too_large" and "400x300" in info.value.detail


@pytest.mark.dlib
def test_prepare_rejects_oversized_images_and_keeps_going(project, astronaut_gray):
    folder, params = _folders_project(project, {"max_image_pixels": 100_000})
    Image.fromarray(_head(astronaut_gray)).save(folder / "S01.png")  # 72900 px: kept
    Image.fromarray(cv2.resize(_head(astronaut_gray), (400, 400))).save(folder / "S02.png")
    _blank_png(folder / "S03.png", 14000, 14000)
    summary = prepare.run(params())
    assert summary["n_prepared"] == 1
    assert _rejections(project) == {"S02.png": "too_large", "S03.png": "too_large"}


def test_unexpected_decoder_errors_are_a_rejection(tmp_path, monkeypatch):
    path = tmp_path / "odd.png"
    _blank_png(path, 80, 80)

    def broken_load(self):
        raise struct.error("unpack requires a buffer of 4 bytes")  # what some malformed TIFFs raise

    monkeypatch.setattr(Image.Image, "load", broken_load)
    with pytest.raises(ImageReadError) as info:
        read_gray(path)
    assert info.value.reason == "corrupt" and "odd.png" in str(info.value)


# ------------------------------------------------------------- 2: names that are not UTF-8


def _undecodable(folder, name: bytes):
    path = folder / os.fsdecode(name)  # a str with surrogate escapes, as os.listdir returns it
    try:
        path.write_bytes(b"")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this filesystem refuses file names that are not UTF-8")
    return path


@pytest.mark.dlib
def test_undecodable_names_are_kept_and_written_escaped(project, astronaut_gray):
    folder, params = _folders_project(project)
    Image.fromarray(_head(astronaut_gray)).save(_undecodable(folder, b"S01_\xff\xfe.png"), format="PNG")
    Image.fromarray(_head(astronaut_gray, dx=4)).save(folder / "S02.png")
    Image.fromarray(_head(astronaut_gray)).save(_undecodable(folder, b"\xff.png"), format="PNG")  # no subject
    _undecodable(folder, b"notes\xfe.bin").write_bytes(b"x")  # not an image
    summary = prepare.run(params())
    assert summary["n_prepared"] == 2
    m = load_prepared(project / "data" / "prepared").manifest
    assert all(i.isascii() for i in m["id"])
    bad = m[m["subject"] == "S01"].iloc[0]
    assert bad["source_path"].endswith("happiness/S01_\\xff\\xfe.png")
    assert (project / "data" / "prepared" / bad["image"]).is_file()
    assert _rejections(project) == {"\\xff.png": "no_subject", "notes\\xfe.bin": "not_an_image"}


def test_tables_never_fail_on_unencodable_text(tmp_path):
    bad = "a\udcff\udcfe/b\ud800.png"  # surrogate escapes of a file name, and a lone surrogate
    row = {c: bad for c in MANIFEST_COLUMNS} | {"det_score": 1.0, "size": 64, "landmarks": [0.0] * 136}
    manifest, rej = preparation.build_tables([row], [{c: bad for c in REJECTED_COLUMNS}])
    manifest.to_parquet(tmp_path / "manifest.parquet")
    rej.to_csv(tmp_path / "rejected.csv", index=False)
    assert pd.read_parquet(tmp_path / "manifest.parquet")["source_path"][0] == "a\\xff\\xfe/b\\ud800.png"
    assert pd.read_csv(tmp_path / "rejected.csv")["detail"][0] == "a\\xff\\xfe/b\\ud800.png"


# ------------------------------------------------------------------------ 3: unique ids


@pytest.mark.dlib
def test_names_that_slug_alike_get_distinct_ids(project, astronaut_gray):
    folder, params = _folders_project(project)
    brightness = {"x.jpg": 1.0, "x.png": 0.85, "x_2.png": 0.7, "y.png": 0.55}
    for name, k in brightness.items():
        Image.fromarray((_head(astronaut_gray) * k).astype(np.uint8)).save(folder / name, quality=95)
    prepare.run(params())
    out = project / "data" / "prepared"
    m = load_prepared(out).manifest
    assert len(m) == 4 and m["id"].is_unique and m["image"].is_unique
    ids = dict(zip(m["source_path"].map(lambda p: p.rsplit("/", 1)[-1]), m["id"]))
    assert ids["y.png"] == "faces__happiness_y"  # an ordinary name keeps its readable id
    for name in ("x.jpg", "x.png", "x_2.png"):
        assert ids[name].startswith("faces__happiness_x")
    # Each crop comes from its own source (no image overwrote another): brightness follows it.
    means = {p.rsplit("/", 1)[-1]: read_gray(out / r).mean() for p, r in zip(m["source_path"], m["image"])}
    assert sorted(means, key=means.get) == sorted(brightness, key=brightness.get)


def test_ids_keep_the_readable_scheme_and_are_unique_by_construction(tmp_path):
    root = tmp_path / "raw"

    def rec(dataset, rel):
        return RawRecord(dataset=dataset, subject="s", label="anger", path=root / dataset / rel)

    records = [
        rec("synthetic", "images/S001_happiness_100.png"),  # the demo's ids do not change
        rec("d", "x.jpg"), rec("d", "x.png"), rec("d", "x_2.png"), rec("d", "x__2.png"),
        rec("d", "日本.png"), rec("d", "中国.png"),  # nothing of the name survives the slug
        rec("e", "x.png"),  # the same slug in another dataset is no clash
        rec("d", "x.png"),  # the same file listed twice: rejected, not a second id
    ]
    kept, rejected = preparation.assign_ids(records, root)
    ids = [fid for _, fid in kept]
    assert ids[0] == "synthetic__images_S001_happiness_100" and ids[-1] == "e__x"
    assert len(ids) == len(set(ids)) == 8
    assert [i.rsplit("__", 1)[0] for i in ids[1:7]] == ["d__x", "d__x", "d__x_2", "d__x_2", "d__", "d__"]
    assert [r["reason"] for r in rejected] == ["duplicate_row"] and rejected[0]["path"].endswith("d/x.png")
    again, _ = preparation.assign_ids(list(reversed(records[:-1])), root)
    assert sorted(fid for _, fid in again) == sorted(ids)  # deterministic, independent of order


def test_ids_of_two_datasets_that_would_meet_are_an_error(tmp_path):
    def rec(dataset, rel):
        return RawRecord(dataset=dataset, subject="s", label="anger", path=tmp_path / dataset / rel)

    pair = [rec("a", "b.png"), rec("a", "b.jpg")]  # a__b__<hash>
    digest = preparation.assign_ids(pair, tmp_path)[0][0][1].rsplit("__", 1)[1]
    with pytest.raises(preparation.PrepareError, match="two datasets.*'__'"):
        preparation.assign_ids([*pair, rec("a__b", f"{digest}.png")], tmp_path)  # a__b + __<hash>


# -------------------------------------------------------------------- 4: EXIF orientation


def _rotated_jpeg(path, upright):
    """A JPEG stored rotated by 90 degrees whose EXIF orientation (6) says how to show it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(path, quality=95, exif=exif)


@pytest.mark.dlib
def test_exif_orientation_is_applied(project, astronaut_gray):
    upright = astronaut_gray[30:300, 110:330].copy()  # 270 high, 220 wide
    folder, params = _folders_project(project)
    _rotated_jpeg(folder / "S01.jpg", upright)
    img = read_gray(folder / "S01.jpg")
    assert img.shape == upright.shape and np.abs(img.astype(int) - upright).mean() < 3
    summary = prepare.run(params())
    assert summary["n_prepared"] == 1, summary["rejected_by_reason"]


# --------------------------------------------------------- large images: reduced detection


def _big_face(astronaut_gray, side):
    return cv2.resize(astronaut_gray[:400, 30:430], (side, side), interpolation=cv2.INTER_CUBIC)


@pytest.mark.dlib
def test_large_image_is_detected_on_a_reduced_copy_with_full_resolution_landmarks(astronaut_gray, monkeypatch):
    img = _big_face(astronaut_gray, 3000)
    full = prepare_face(img, PrepareParams(detect_max_side=4096))
    real, seen = dlib_models.detector(), []

    class Spy:
        def run(self, gray, *args):
            seen.append(gray.shape)
            return real.run(gray, *args)

    monkeypatch.setattr(dlib_models, "detector", Spy)
    reduced = prepare_face(img, PrepareParams(detect_max_side=1024))
    assert seen == [(1024, 1024)]
    iod = np.linalg.norm(full.source_landmarks[36:42].mean(0) - full.source_landmarks[42:48].mean(0))
    err = np.linalg.norm(reduced.source_landmarks - full.source_landmarks, axis=1)
    assert iod > 250 and err.mean() < 3 and err.max() < 8, (iod, err.mean(), err.max())
    assert np.abs(reduced.landmarks - full.landmarks).max() < 1.0  # in the 160 px crop (IOD 50 px)


def test_reading_reduces_large_images_and_reports_the_scale(tmp_path, astronaut_gray):
    img = _big_face(astronaut_gray, 2400)[:, :1800]
    for name in ("big.png", "big.jpg"):
        Image.fromarray(img).save(tmp_path / name, quality=95)
        got = images.load_gray(tmp_path / name, max_side=1000)
        assert got.pixels.shape == (1000, 750) and got.scale == (750 / 1800, 1000 / 2400)
        ref = cv2.resize(img, (750, 1000), interpolation=cv2.INTER_AREA)
        assert np.abs(got.pixels.astype(int) - ref).mean() < 2, name
    assert images.load_gray(tmp_path / "big.png", max_side=4000).scale == (1.0, 1.0)


def test_reduced_working_image_keeps_dataset_landmarks_and_masks_aligned(tmp_path, astronaut_gray):
    """A 2048 px image with dataset landmarks and a mask, read at work_max_side 1024: the crop,
    its landmarks and its mask match those made from the full-resolution image."""
    small = _head(astronaut_gray)
    lm_small = prepare_face(small, PrepareParams()).source_landmarks
    k = 2048 / small.shape[0]
    big = cv2.resize(small, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    lm_big = (lm_small + 0.5) * k - 0.5
    mask = np.zeros_like(big)
    mask[1200:1600, 600:1400] = 255
    Image.fromarray(big).save(tmp_path / "f.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    rec = RawRecord(dataset="d", subject="s", label="anger", path=tmp_path / "f.png",
                    landmarks=lm_big, mask_path=tmp_path / "m.png")
    out = {}
    for side in (4096, 1024):
        p = PrepareParams(size=128, landmarks_source="dataset", work_max_side=side)
        res = preparation.process_record(rec, f"f{side}", tmp_path / "out", p)
        assert not res["rejected"], res
        out[side] = res
    a, b = (np.asarray(out[s]["landmarks"]) for s in (4096, 1024))
    assert np.abs(a - b).max() < 1e-3
    crop_a, crop_b = (read_gray(tmp_path / "out" / out[s]["image"]).astype(int) for s in (4096, 1024))
    assert np.abs(crop_a - crop_b).mean() < 2
    mask_a, mask_b = (read_gray(tmp_path / "out" / out[s]["mask"]) > 0 for s in (4096, 1024))
    assert (mask_a != mask_b).mean() < 0.01
