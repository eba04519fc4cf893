"""Canonical face space: template, triangulation, per-face rejection, warp vs scikit-image."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from fer_xai.faces import canonical as C


@pytest.fixture(scope="module")
def space() -> C.CanonicalSpace:
    return C.canonical_space()


def random_face(space: C.CanonicalSpace, rng: np.random.Generator, size: int = 160, noise: float = 0.6):
    """Template landmarks under a random similarity (plus jitter) inside a ``size`` image."""
    lm = space.landmarks
    ang = np.deg2rad(rng.uniform(-12, 12))
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    c = lm.mean(0)
    pts = (lm - c) @ rot.T
    span = np.ptp(pts, axis=0).max()
    scale = rng.uniform(0.5, 0.7) * size / span
    pts = pts * scale + size / 2 + rng.uniform(-0.04, 0.04, 2) * size
    pts += rng.normal(0, noise, pts.shape) * scale
    assert (pts > 0).all() and (pts < size - 1).all()
    return pts


def smooth_image(rng, size=160, sigma=4.0):
    img = gaussian_filter(rng.random((size, size)), sigma)
    return ((img - img.min()) / np.ptp(img)).astype(np.float32)


def skimage_warp(space, landmarks, image, order):
    from skimage.transform import PiecewiseAffineTransform, warp

    src = space.source_control_points(landmarks, image.shape)
    tform = PiecewiseAffineTransform.from_estimate(space.control, src)
    assert tform, "scikit-image could not estimate the piecewise-affine transform"
    return warp(image, tform, output_shape=space.shape, order=order, mode="edge", preserve_range=True)


# ------------------------------------------------------------------------------ template


def test_template_file_is_the_published_layout():
    data = C.read_template_file()
    lm = np.asarray(data["landmarks"], float)
    assert lm.shape == (68, 2)
    assert data["face_box"] == [0, 0, 224, 250] and (data["width"], data["height"]) == (224, 275)
    assert "dlib" in data["provenance"]["method"] and data["provenance"]["model_sha256"]
    # Inside the face box horizontally; the chin reaches into the bottom margin (dlib's mean face).
    assert lm[:, 0].min() >= 0 and lm[:, 0].max() <= 224 and lm[:, 1].min() >= 0 and lm[:, 1].max() < 275
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    assert np.allclose(eye_l, (69, 80), atol=1.5) and np.allclose(eye_r, (151, 79), atol=1.5)
    assert tuple(lm[8]) == (114, 269)


@pytest.mark.dlib
def test_template_file_equals_a_fresh_dlib_run():
    from fer_xai.faces.dlib_models import ModelNotFoundError

    try:
        fresh = C.dlib_mean_landmarks()
    except (ModelNotFoundError, ImportError) as exc:
        pytest.skip(f"dlib 68-point model unavailable: {exc}")
    assert np.array_equal(fresh, np.asarray(C.read_template_file()["landmarks"], float))


def test_control_points_and_triangulation(space):
    assert space.control.shape == (89, 2)
    assert np.array_equal(space.control[:68], space.landmarks)
    assert np.all(space.control[68:85, 1] == -0.5)  # top edge
    assert sorted(space.control[68:85, 0]) == sorted(space.landmarks[:17, 0])
    assert space.control[85:].tolist() == [[-0.5, -0.5], [-0.5, 274.5], [223.5, -0.5], [223.5, 274.5]]
    tri = space.triangles
    assert set(np.unique(tri)) == set(range(89))  # every control point is a vertex
    assert (C.signed_areas(space.control, tri) > 0).all()  # oriented, none degenerate
    # Every canonical pixel belongs to exactly the triangle scipy's Delaunay reports.
    assert space.pixel_triangle.shape == (275, 224) and space.pixel_triangle.min() >= 0


def test_template_box_is_scaled_with_the_parameters():
    small = C.canonical_space(width=112, height=137, face_box_height=125)
    full = C.dlib_mean_template()
    expect = (full + 0.5) * np.array([112 / 224, 125 / 250]) - 0.5
    assert np.allclose(small.landmarks, expect)
    with pytest.raises(C.CanonicalError, match="face_box_height"):
        C.canonical_space(face_box_height=300)


def test_bad_template_is_an_error(space):
    lm = space.landmarks.copy()
    lm[1] = lm[0]
    with pytest.raises(C.CanonicalError, match="not distinct"):
        C.CanonicalSpace(lm)
    with pytest.raises(C.CanonicalError, match="inside"):
        C.CanonicalSpace(space.landmarks + [0, 30])


def test_template_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"landmarks": [[0, 0]] * 3, "width": 1, "height": 1, "face_box": [0, 0, 1, 1]}))
    with pytest.raises(C.CanonicalError, match=str(bad)):
        C.read_template_file(str(bad))


def test_procrustes_template_recovers_the_shape(space):
    rng = np.random.default_rng(0)
    shapes = np.stack([random_face(space, rng, noise=0.0) for _ in range(8)])
    tpl = C.procrustes_template(shapes)
    assert np.abs(tpl - space.landmarks).max() < 1e-6  # rotations/scales of the template itself
    noisy = np.stack([random_face(space, rng, noise=1.0) for _ in range(30)])
    tpl2 = C.procrustes_template(noisy)
    assert np.abs(tpl2 - space.landmarks).mean() < 1.0
    ps = C.canonical_space(template="procrustes", landmarks=noisy)
    assert ps.source == "procrustes" and ps.triangles.shape[1] == 3
    with pytest.raises(C.CanonicalError, match="needs the landmarks"):
        C.canonical_space(template="procrustes")


# ---------------------------------------------------------------------------- rejection


def test_flipped_faces_are_rejected(space):
    rng = np.random.default_rng(1)
    face = random_face(space, rng)
    space.check(face, (160, 160))
    mirrored = face.copy()
    mirrored[:, 0] = 159 - mirrored[:, 0]  # mirrored without relabelling left and right
    with pytest.raises(C.WarpRejected) as exc:
        space.grid(mirrored, (160, 160))
    assert exc.value.reason == "flipped_triangle" and "canonical px" in str(exc.value)
    swapped = face.copy()
    swapped[[36, 45]] = swapped[[45, 36]]  # outer eye corners exchanged
    with pytest.raises(C.WarpRejected, match="flipped"):
        space.grid(swapped, (160, 160))


def test_other_rejections(space):
    rng = np.random.default_rng(2)
    face = random_face(space, rng)
    nan = face.copy()
    nan[5, 0] = np.nan
    with pytest.raises(C.WarpRejected) as exc:
        space.check(nan, (160, 160))
    assert exc.value.reason == "non_finite_landmarks"
    with pytest.raises(C.WarpRejected) as exc:
        space.check(face + [0, 60], (160, 160))
    assert exc.value.reason == "landmarks_outside_image" and "160x160" in str(exc.value)
    with pytest.raises(C.WarpRejected) as exc:
        space.check(face[:60], (160, 160))
    assert exc.value.reason == "bad_landmarks"


def test_fold_tolerance_and_degenerate_triangles(space):
    rng = np.random.default_rng(3)
    face = random_face(space, rng, noise=0.0)
    closed = face.copy()
    closed[[65, 66, 67]] = closed[[63, 62, 61]]  # inner lips closed: inner-mouth triangles collapse
    chk = space.check(closed, (160, 160))
    assert chk.n_folded > 0 and chk.max_fold <= space.max_fold_px
    strict = C.CanonicalSpace(space.landmarks, max_fold_px=0.0)
    with pytest.raises(C.WarpRejected) as exc:
        strict.check(closed, (160, 160))
    assert exc.value.reason == "degenerate_triangle"
    crossed = face.copy()
    crossed[[65, 66, 67]] = closed[[65, 66, 67]] - [0, 0.8]  # lower inner lip slightly above the upper
    space.check(crossed, (160, 160))  # a sub-pixel fold is tolerated
    with pytest.raises(C.WarpRejected, match="flipped"):
        strict.check(crossed, (160, 160))


def test_top_points_sorted_do_not_fold_where_copies_do(space):
    face = space.landmarks * 0.5 + 10
    face[0, 0] = face[1, 0] + 1.0  # jaw point 1 right of point 2 (the template has it 1 px left)
    copy = C.CanonicalSpace(space.landmarks, top_points="copy", max_fold_px=0.0)
    srt = C.CanonicalSpace(space.landmarks, top_points="sorted", max_fold_px=0.0)
    with pytest.raises(C.WarpRejected, match="flipped"):
        copy.check(face, (160, 160))
    srt.check(face, (160, 160))


# ---------------------------------------------------------------------------------- warp


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_warp_agrees_with_scikit_image(space, seed):
    rng = np.random.default_rng(seed)
    face = random_face(space, rng)
    hull = space.face_hull_mask()
    grid = space.grid(face, (160, 160))
    # Linear sampling of a smooth image.
    img = smooth_image(rng)
    ours = grid.apply(img, "linear")
    ref = skimage_warp(space, face, img, order=1)
    agree = np.abs(ours - ref)[hull] <= 0.01
    assert agree.mean() >= 0.99, f"linear agreement {agree.mean():.4f}"
    # Nearest sampling of a label map (the segments of an explanation).
    labels = (np.floor(img * 40) * 7 + np.arange(160)[None, :] // 20).astype(np.int32)
    ours_l = grid.apply(labels, "nearest")
    ref_l = skimage_warp(space, face, labels.astype(np.float64), order=0).astype(np.int32)
    assert ours_l.dtype == np.int32
    agree_l = (ours_l == ref_l)[hull]
    assert agree_l.mean() >= 0.99, f"nearest agreement {agree_l.mean():.4f}"


def test_affine_form_equals_the_grid(space):
    rng = np.random.default_rng(4)
    face = random_face(space, rng)
    grid = space.grid(face, (160, 160))
    aff = space.affines(space.source_control_points(face, (160, 160)))
    ys, xs = np.mgrid[0:275, 0:224]
    a = aff[space.pixel_triangle]
    mx = a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]
    my = a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]
    assert np.abs(mx - grid.map_x).max() < 1e-3 and np.abs(my - grid.map_y).max() < 1e-3


@pytest.mark.parametrize("seed", [20, 21])
def test_landmarks_land_on_the_template(space, seed):
    rng = np.random.default_rng(seed)
    size = 160
    face = random_face(space, rng, size=size)
    grid = space.grid(face, (size, size))
    # Warp images of the source coordinates: each canonical pixel shows where it sampled.
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    wx, wy = grid.apply(xs, "linear"), grid.apply(ys, "linear")
    for k in range(68):
        d = np.hypot(wx - face[k, 0], wy - face[k, 1])
        q = np.unravel_index(np.argmin(d), d.shape)
        # The canonical pixel that samples landmark k is within 1 px of template landmark k.
        assert np.hypot(q[1] - space.landmarks[k, 0], q[0] - space.landmarks[k, 1]) <= 1.0, k
        assert d[q] < 0.75


def test_grid_is_reused_across_resolutions(space):
    rng = np.random.default_rng(5)
    face160 = random_face(space, rng)
    grid = space.grid(face160, (160, 160))
    for size in (48, 64, 224):
        face = (face160 + 0.5) * size / 160 - 0.5
        fresh = space.grid(face, (size, size))
        scaled = grid.rescaled((size, size))
        assert np.abs(fresh.map_x - scaled.map_x).max() < 1e-3
        assert np.abs(fresh.map_y - scaled.map_y).max() < 1e-3


def test_apply_checks_the_image(space):
    rng = np.random.default_rng(6)
    grid = space.grid(random_face(space, rng), (160, 160))
    with pytest.raises(ValueError, match="built for"):
        grid.apply(np.zeros((64, 64), np.float32))
    with pytest.raises(ValueError, match="nearest"):
        grid.apply(np.zeros((160, 160), np.int32), "linear")
    stack = grid.apply_many(np.zeros((3, 160, 160), np.float32))
    assert stack.shape == (3, 275, 224)
    rgb = grid.apply(np.zeros((160, 160, 3), np.uint8))
    assert rgb.shape == (275, 224, 3) and rgb.dtype == np.uint8
