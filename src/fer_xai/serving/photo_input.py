"""The photo model's request: one DataFrame column of base64-encoded image files, checked.

Everything wrong with a request (a missing column, a value that is not base64) is a
:class:`PhotoInputError` naming the row, which the model turns into a 400 answer.
"""

from __future__ import annotations

import base64
import binascii
import re

from ..errors import FerXaiError

IMAGE_COLUMN = "image"
# A browser's data URL (``data:image/png;base64,...``) carries the same base64 after its comma.
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
MAX_ROWS_NAMED = 5  # rows quoted in one error message


class PhotoInputError(FerXaiError, ValueError):
    """A malformed request; the message says which rows and what is wrong."""


def decode_image(value: object) -> bytes:
    """The file bytes of one base64 value (line breaks and a data-URL prefix allowed); raises
    :class:`ValueError` saying what is wrong."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii", errors="replace")
    if not isinstance(value, str):
        raise ValueError(f"expected a base64 string, got {type(value).__name__}")
    text = _WHITESPACE.sub("", _DATA_URL.sub("", value.strip(), count=1))
    if not text:
        raise ValueError("empty value")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64 ({exc})") from exc
    if not data:
        raise ValueError("empty value")
    return data


def decode_images(frame) -> list[bytes]:
    """The image bytes of every row of ``frame`` (a DataFrame with column :data:`IMAGE_COLUMN`)."""
    columns = [str(c) for c in getattr(frame, "columns", [])]
    if IMAGE_COLUMN not in columns:
        raise PhotoInputError(f"the request has columns {columns}; expected one column {IMAGE_COLUMN!r} of base64 "
                              "PNG/JPEG files")
    if len(frame) == 0:
        raise PhotoInputError("the request has no rows")
    out, bad = [], []
    for row, value in enumerate(frame[IMAGE_COLUMN].tolist()):
        try:
            out.append(decode_image(value))
        except ValueError as exc:
            bad.append(f"row {row}: {exc}")
    if bad:
        more = "; ..." if len(bad) > MAX_ROWS_NAMED else ""
        raise PhotoInputError(f"column {IMAGE_COLUMN!r}: {len(bad)} of {len(frame)} values are not base64 image "
                              "files: " + "; ".join(bad[:MAX_ROWS_NAMED]) + more)
    return out
