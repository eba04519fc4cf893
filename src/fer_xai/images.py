"""Robust image reading: one place that turns any dataset file into an 8-bit grayscale array."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp")


class ImageReadError(ValueError):
    """An input file that cannot be used as a face image; ``reason`` is short and machine-sortable."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str = ""):
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))


def is_image_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale 16-bit / float / int32 data to 0..255 by its dtype range (not per-image contrast)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        hi = 1.0 if float(np.nanmax(arr)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(arr) / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
    maxval = 65535 if arr.max(initial=0) > 255 else 255
    return np.clip(arr.astype(np.float64) / maxval * 255.0 + 0.5, 0, 255).astype(np.uint8)


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """Read any supported image (8/16-bit, RGB(A), palette, TIFF, ...) as uint8 grayscale (H, W).

    Raises :class:`ImageReadError` naming the file and the problem instead of crashing later.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "missing", "no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty_file")
    try:
        with Image.open(path) as im:
            im.load()  # forces decoding so truncated files fail here, not downstream
            frame = _to_gray_pil(im)
    except UnidentifiedImageError as exc:
        raise ImageReadError(path, "not_an_image", type(exc).__name__) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, "corrupt", str(exc)[:200]) from exc
    if frame.ndim != 2 or frame.size == 0:
        raise ImageReadError(path, "bad_shape", f"shape {frame.shape}")
    return np.ascontiguousarray(frame)


def _to_gray_pil(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("P", "PA"):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA"):
        # Composite on white: transparent borders of cut-out portraits must not look like hair.
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im.convert("RGBA")).convert("RGB")
        mode = "RGB"
    if mode in ("RGB", "CMYK", "YCbCr", "HSV", "LAB"):
        return np.asarray(im.convert("L"), dtype=np.uint8)
    if mode == "1":
        return np.asarray(im.convert("L"), dtype=np.uint8)
    arr = np.asarray(im)
    if arr.ndim == 3:  # multi-channel 16-bit data that Pillow keeps as an array
        arr = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return _to_uint8(arr)


def write_png(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write an image atomically (temp file + rename) so an interrupted stage leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(arr).save(tmp, format="PNG")
    os.replace(tmp, path)
