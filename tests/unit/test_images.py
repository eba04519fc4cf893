import io

import numpy as np
import pytest
from PIL import Image

from fer_xai.images import ImageReadError, read_gray, write_png


def _save(path, im, **kw):
    im.save(path, **kw)
    return path


def test_reads_common_modes_as_uint8_gray(tmp_path, astronaut_rgb):
    rgb = Image.fromarray(astronaut_rgb)
    ref = np.asarray(rgb.convert("L"))
    cases = {
        "rgb.png": rgb,
        "gray.tiff": rgb.convert("L"),
        "rgba.png": rgb.convert("RGBA"),
        "palette.png": rgb.convert("P"),
        "jpeg.jpg": rgb,
    }
    for name, im in cases.items():
        out = read_gray(_save(tmp_path / name, im))
        assert out.dtype == np.uint8 and out.shape == ref.shape, name
        assert np.abs(out.astype(int) - ref).mean() < (12 if name in ("palette.png", "jpeg.jpg") else 1.01), name


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    out = read_gray(path)
    assert out.dtype == np.uint8
    assert out.min() == 0 and out.max() == 255
    assert abs(int(out[32, 0]) - round(arr[32, 0] / 65535 * 255)) <= 1


def test_transparent_pixels_become_white(tmp_path):
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[..., 3] = 0
    out = read_gray(_save(tmp_path / "clear.png", Image.fromarray(arr, "RGBA")))
    assert (out == 255).all()


@pytest.mark.parametrize(
    "content,reason",
    [(b"", "empty_file"), (b"this is not an image", "not_an_image")],
)
def test_bad_files_raise_named_error(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError) as err:
        read_gray(path)
    assert err.value.reason == reason and str(path) in str(err.value)


def test_truncated_file_is_corrupt(tmp_path, astronaut_rgb):
    buf = io.BytesIO()
    Image.fromarray(astronaut_rgb).save(buf, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError) as err:
        read_gray(path)
    assert err.value.reason == "corrupt"


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="missing"):
        read_gray(tmp_path / "nope.png")


def test_write_png_is_atomic_and_roundtrips(tmp_path):
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "a" / "b.png"
    write_png(path, arr)
    assert np.array_equal(read_gray(path), arr)
    assert not list(path.parent.glob(".*tmp"))
