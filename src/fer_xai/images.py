"""Robust image reading: one place that turns any dataset file into an 8-bit grayscale array."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .paths import write_bytes_atomic

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


@dataclass(frozen=True)
class GrayImage:
    pixels: np.ndarray  # uint8 (H, W), upright (EXIF orientation applied)
    # (x, y) factors from the upright file's pixel grid to ``pixels``; (1, 1) unless reduced.
    scale: tuple[float, float] = (1.0, 1.0)


def read_gray(path: str | os.PathLike, *, max_pixels: int | None = None, max_side: int | None = None) -> np.ndarray:
    """Read any supported image (8/16-bit, RGB(A), palette, TIFF, ...) as uint8 grayscale (H, W),
    upright; see :func:`load_gray` for the limits."""
    return load_gray(path, max_pixels=max_pixels, max_side=max_side).pixels


def load_gray(path: str | os.PathLike, *, max_pixels: int | None = None, max_side: int | None = None) -> GrayImage:
    """Read an image as upright uint8 grayscale, reduced (area averaging) to ``max_side`` on its
    longer side when larger; an image over ``max_pixels`` (or Pillow's own bomb limit) is rejected
    as ``too_large`` from its header, before anything is decoded.

    Raises :class:`ImageReadError` naming the file and the problem instead of crashing later.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "missing", "no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty_file")
    try:
        with warnings.catch_warnings():
            # The pixel limit is ours (checked below); Pillow's warning under it is only noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return _decode(path, im, max_pixels, max_side)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, "too_large", str(exc)[:200]) from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(path, "not_an_image", type(exc).__name__) from exc
    except MemoryError:  # the machine's problem, not the file's: do not record it as corrupt
        raise
    except Exception as exc:  # malformed files make Pillow raise struct.error, IndexError, ...
        raise ImageReadError(path, "corrupt", f"{type(exc).__name__}: {exc}"[:200]) from exc


def _decode(path: Path, im: Image.Image, max_pixels: int | None, max_side: int | None) -> GrayImage:
    width, height = im.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(path, "too_large", f"{width}x{height} px > max_image_pixels {max_pixels}")
    target = _fit(im.size, max_side)
    if target != im.size:
        # JPEG: decode straight to gray, at the 1/2..1/8 scale still covering ``target`` (no-op elsewhere).
        im.draft("L", target)
    swap = im.getexif().get(ExifTags.Base.Orientation, 1) in _SWAPS_AXES
    ImageOps.exif_transpose(im, in_place=True)  # also forces decoding: truncated files fail here
    gray = _to_gray_pil(im)
    if isinstance(gray, np.ndarray):
        raise ImageReadError(path, "bad_shape", f"shape {gray.shape}")
    if swap:
        (width, height), target = (height, width), target[::-1]
    if gray.size != target:  # reduced while still a Pillow image: no full-size array is made
        gray = gray.resize(target, Image.Resampling.BOX)
    return GrayImage(np.asarray(gray, dtype=np.uint8), (target[0] / width, target[1] / height))


# EXIF orientations 5-8 are rotations by 90 degrees (width and height swap).
_SWAPS_AXES = frozenset({5, 6, 7, 8})


def _fit(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """``size`` scaled down to ``max_side`` on its longer side (unchanged when it fits)."""
    if max_side is None or max(size) <= max_side:
        return size
    f = max_side / max(size)
    return max(1, round(size[0] * f)), max(1, round(size[1] * f))


def _to_gray_pil(im: Image.Image) -> Image.Image | np.ndarray:
    """An 8-bit gray (mode L) image; the array itself where it is not 2-D (bad data)."""
    mode = im.mode
    if mode in ("P", "PA"):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA"):
        # Composite on white: transparent borders of cut-out portraits must not look like hair.
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im.convert("RGBA")).convert("RGB")
        mode = "RGB"
    if mode == "L":
        return im
    if mode in ("RGB", "CMYK", "YCbCr", "HSV", "LAB", "1"):
        return im.convert("L")
    arr = np.asarray(im)
    if arr.ndim == 3:  # multi-channel 16-bit data that Pillow keeps as an array
        arr = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if arr.ndim != 2 or arr.size == 0:
        return arr
    return Image.fromarray(_to_uint8(arr))


def write_png(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write an image atomically (temp file + rename) so an interrupted stage leaves no half file."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())
