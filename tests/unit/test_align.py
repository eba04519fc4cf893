import cv2
import numpy as np
import pytest

from fer_xai.faces.align import (
    CropGeometry,
    FaceError,
    align_face,
    detect_face,
    eye_centres,
    inter_ocular,
    predict_landmarks,
)

GEOM = CropGeometry(size=160, width_iod=3.2, top_iod=0.7)


def _rotate(img, deg):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE), m


@pytest.mark.parametrize("angle", [0.0, 12.0, -15.0])
def test_eye_line_horizontal_and_iod_fixed(astronaut_gray, angle):
    img, _ = _rotate(astronaut_gray, angle)
    face = align_face(img, GEOM)
    left, right = eye_centres(face.landmarks)
    assert abs(left[1] - right[1]) < 0.05
    assert inter_ocular(face.landmarks) == pytest.approx(GEOM.size / GEOM.width_iod, rel=1e-4)
    assert np.mean([left[1], right[1]]) == pytest.approx(GEOM.top_iod * GEOM.size / GEOM.width_iod, abs=0.05)
    assert face.image.shape == (160, 160) and face.image.dtype == np.uint8
    assert face.landmarks_source == "dlib" and face.det_score > 0
    # The whole face (jaw, brows) lies inside the crop.
    assert face.landmarks.min() >= 0 and face.landmarks.max() < GEOM.size


def test_crop_landmarks_agree_with_dlib_rerun_on_the_crop(astronaut_gray):
    """The stored crop landmarks are the source landmarks mapped exactly, not a re-estimate."""
    face = align_face(astronaut_gray, CropGeometry(size=256, width_iod=3.2, top_iod=0.7))
    det = detect_face(face.image, 0, 20, "largest")
    again = predict_landmarks(face.image, det.box)
    err = np.linalg.norm(again - face.landmarks, axis=1).mean() / inter_ocular(face.landmarks)
    assert err < 0.06


def test_mask_goes_through_the_same_transform(astronaut_gray):
    src = align_face(astronaut_gray, GEOM)
    nose = src.source_landmarks[30]
    mask = np.zeros_like(astronaut_gray)
    cv2.circle(mask, (int(round(nose[0])), int(round(nose[1]))), 12, 255, -1)
    face = align_face(astronaut_gray, GEOM, mask=mask)
    assert set(np.unique(face.mask)) <= {0, 255}
    ys, xs = np.nonzero(face.mask)
    centroid = np.array([xs.mean(), ys.mean()])
    assert np.linalg.norm(centroid - face.landmarks[30]) < 1.5


def test_dataset_landmarks_are_used_when_asked(astronaut_gray):
    lm = align_face(astronaut_gray, GEOM).source_landmarks + 1.0
    face = align_face(astronaut_gray, GEOM, dataset_landmarks=lm, landmarks_source="dataset")
    assert face.landmarks_source == "dataset" and np.isnan(face.det_score)
    np.testing.assert_allclose(face.source_landmarks, lm)
    with pytest.raises(FaceError, match="no_landmarks"):
        align_face(astronaut_gray, GEOM, landmarks_source="dataset")
    auto = align_face(astronaut_gray, GEOM, landmarks_source="auto")
    assert auto.landmarks_source == "dlib"


def test_no_face_and_several_faces(astronaut_gray):
    rng = np.random.default_rng(0)
    with pytest.raises(FaceError) as err:
        align_face(rng.integers(0, 255, (300, 300), dtype=np.uint8), GEOM)
    assert err.value.reason == "no_face"
    head = astronaut_gray[40:260, 110:340]
    two = np.hstack([head, head])
    with pytest.raises(FaceError) as err:
        align_face(two, GEOM)
    assert err.value.reason == "multiple_faces"
    assert align_face(two, GEOM, multiple="largest").image.shape == (160, 160)


def test_small_face_rejected(astronaut_gray):
    small = cv2.resize(astronaut_gray, (256, 256), interpolation=cv2.INTER_AREA)
    with pytest.raises(FaceError) as err:
        align_face(small, GEOM, min_face_px=60, upsample=1)
    assert err.value.reason in ("face_too_small", "no_face")
