"""Common types of the dataset adapters: records, rejections, the adapter base class, helpers.

An *adapter* turns one dataset folder, laid out the way its publisher distributes it, into a
list of :class:`RawRecord` (one labelled face image each) plus a list of :class:`Rejection`
(files that were looked at and deliberately not used, with a short machine-sortable reason).
Scanning is cheap: it reads file names and small text files (labels, landmarks) but never
decodes images; ``prepare`` does that.

Rejection reasons used across adapters:

``unknown_label``    a label/code that maps to none of the six expressions or neutral
``excluded_label``   a known label that is dropped on purpose (CK+ contempt; neutral unless
                     ``include_neutral``)
``not_an_image``     a file that is not an image (by extension) where images are expected
``bad_name``         an image whose name does not follow the dataset's naming scheme
``no_subject``       the subject id could not be derived
``bad_landmarks``    a landmark file that is unreadable or not 68 ``x y`` rows (the image is
                     kept without landmarks; the rejection names the landmark file)
``bad_label_file``   a label file that cannot be parsed
``missing_file``     a file referenced by a label file/manifest that does not exist
``missing_mask``     a mask referenced by a manifest that does not exist (image kept)
``missing_neutral``  a neutral twin referenced by a manifest that does not exist (image kept)
``duplicate_row``    the same image listed twice in a manifest / norms sheet
``ambiguous_label``  a file name that carries two different expression words
``empty_sequence``   a sequence folder with no frames
``not_in_norms``     a WSEFEP image that the norms sheet does not list
``symlink_loop``     a folder symlink back to an enclosing folder (not walked again)
``repeated_folder``  a second symlink to a folder already walked (its files are listed once)

Reasons added by ``prepare`` (``rejected.csv``, stage ``prepare`` unless noted):

``missing``, ``empty_file``, ``not_an_image``, ``corrupt``, ``bad_shape``
                     the file cannot be decoded into a grayscale image
``too_large``        more pixels than ``prepare.max_image_pixels`` (or Pillow's bomb limit), read
                     from the header, so the image is never decoded
``too_small``        the shorter side is under ``prepare.min_image_px``
``no_face``, ``multiple_faces``, ``face_too_small``
                     what the face detector found (``multiple_faces`` unless
                     ``prepare.multiple_faces: largest``)
``no_landmarks``, ``bad_landmarks``
                     ``landmarks_source: dataset`` without usable dataset landmarks
``bad_mask``         a mask that cannot be read or does not match its image's size
``bad_neutral``      a neutral twin that cannot be read or does not match its image's size
``duplicate_row``    (stage ``scan``) the same file listed twice by the adapter
"""

from __future__ import annotations

import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..images import is_image_name
from ..labels import EXPRESSIONS, NEUTRAL, normalize_label

# Labels that exist in some datasets but are deliberately not part of the study.
EXCLUDED_LABELS: frozenset[str] = frozenset({"contempt", "contemptuous", "co"})

# Files that are documentation/metadata, skipped without a rejection.
QUIET_SUFFIXES: frozenset[str] = frozenset(
    {".txt", ".md", ".rst", ".pdf", ".doc", ".docx", ".csv", ".tsv", ".xls", ".xlsx", ".json",
     ".yaml", ".yml", ".xml", ".html", ".htm", ".dvc", ".ini", ".db", ".zip", ".log"}
)
QUIET_NAMES: frozenset[str] = frozenset({"thumbs.db", "desktop.ini", "readme", "license", "copying"})


@dataclass(frozen=True)
class RawRecord:
    """One labelled face image of a dataset, as found on disk (nothing decoded yet)."""

    dataset: str
    subject: str
    label: str  # canonical: one of labels.EXPRESSIONS or "neutral"
    path: Path  # absolute image path
    # (68, 2) float64 x, y in the image's pixel coordinates, only when the dataset ships them.
    landmarks: np.ndarray | None = field(default=None, compare=False, hash=False, repr=False)
    mask_path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # The same face without expression, pixel-aligned with ``path`` (the synthetic set's twins).
    neutral_path: Path | None = None

    def as_row(self) -> dict[str, Any]:
        """A flat, JSON-friendly view (landmarks reduced to a flag)."""
        return {
            "dataset": self.dataset,
            "subject": self.subject,
            "label": self.label,
            "path": str(self.path),
            "has_landmarks": self.landmarks is not None,
            "mask_path": str(self.mask_path) if self.mask_path else None,
            "neutral_path": str(self.neutral_path) if self.neutral_path else None,
            **{f"meta.{k}": v for k, v in self.meta.items()},
        }


@dataclass
class Rejection:
    path: str
    reason: str
    detail: str = ""


@dataclass
class ScanResult:
    records: list[RawRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    adapter: str = ""
    # Adapter-specific counters that are neither records nor rejections
    # (e.g. CK+ unlabelled sequences, quietly ignored documentation files).
    info: dict[str, Any] = field(default_factory=dict)

    def reject(self, path: str | os.PathLike, reason: str, detail: str = "") -> None:
        self.rejections.append(Rejection(str(path), reason, detail))

    def label_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.label for r in self.records).items()))

    def subject_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.subject for r in self.records).items()))

    def rejection_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.reason for r in self.rejections).items()))

    def bump(self, key: str, n: int = 1) -> None:
        self.info[key] = int(self.info.get(key, 0)) + n


class LayoutError(ValueError):
    """A folder whose layout no adapter (or not the requested adapter) recognises."""

    def __init__(self, root: str | os.PathLike, tried: dict[str, str], requested: str | None = None):
        self.root = str(root)
        self.tried = dict(tried)
        self.requested = requested
        lines = []
        if requested:
            lines.append(f"{self.root}: does not look like the '{requested}' layout.")
            lines.append(f"  expected: {tried.get(requested, '?')}")
            others = [n for n in tried if n != requested]
            if others:
                lines.append(f"  other adapters: {', '.join(others)} (or 'auto')")
        else:
            lines.append(f"{self.root}: no known dataset layout found. Layouts tried:")
            lines.extend(f"  - {name}: {desc}" for name, desc in tried.items())
            lines.append("  Write a manifest.csv (path,subject,label) and use --adapter csv,"
                         " or pass --adapter NAME with --option key=value.")
        super().__init__("\n".join(lines))


class AdapterOptionError(ValueError):
    """Unknown adapter name, unknown option key or an option value of the wrong type."""


_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def _coerce(adapter: str, key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError(f"expected true/false, got {value!r}")
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(f"expected an integer, got {value!r}")
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError(f"expected a number, got {value!r}")
            return float(value)
        if isinstance(default, list):
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
            return [s.strip() for s in str(value).split(",") if s.strip()]
        return None if value is None else str(value)
    except (TypeError, ValueError) as exc:
        raise AdapterOptionError(f"adapter '{adapter}': option {key}: {exc}") from exc


class Adapter:
    """Base class. Subclasses set ``name``, ``layout`` and ``option_defaults`` and implement
    :meth:`matches` and :meth:`_scan`."""

    name: ClassVar[str] = ""
    layout: ClassVar[str] = ""  # one line, shown in LayoutError and `fer-xai data adapters`
    # option -> (default, help). ``include_neutral`` is added for every adapter.
    option_defaults: ClassVar[dict[str, tuple[Any, str]]] = {}

    def all_options(self) -> dict[str, tuple[Any, str]]:
        return {
            "include_neutral": (False, "also return neutral faces (as label 'neutral')"),
            **self.option_defaults,
        }

    def parse_options(self, options: dict[str, Any] | None) -> dict[str, Any]:
        spec = self.all_options()
        unknown = sorted(set(options or {}) - set(spec))
        if unknown:
            raise AdapterOptionError(
                f"adapter '{self.name}': unknown option(s) {', '.join(unknown)};"
                f" known: {', '.join(sorted(spec))}"
            )
        out = {k: d for k, (d, _) in spec.items()}
        for key, value in (options or {}).items():
            out[key] = _coerce(self.name, key, value, spec[key][0])
        return out

    def matches(self, root: Path, **options: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def scan(self, root: Path, dataset: str, **options: Any) -> ScanResult:
        opts = self.parse_options(options)
        root = Path(os.path.abspath(root))
        if not root.is_dir():
            raise LayoutError(root, {self.name: "an existing folder"}, requested=self.name)
        if not self.matches(root, **opts):
            from . import layouts_tried  # the registry lives in the package (import cycle)

            raise LayoutError(root, layouts_tried(), requested=self.name)
        result = ScanResult(adapter=self.name)
        self._scan(root, dataset, opts, result)
        result.records.sort(key=lambda r: (r.subject, r.label, str(r.path)))
        return result

    def _scan(self, root: Path, dataset: str, opts: dict[str, Any], result: ScanResult) -> None:
        raise NotImplementedError  # pragma: no cover

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# --------------------------------------------------------------------------- helpers


def classify_label(raw: str, include_neutral: bool) -> tuple[str | None, str]:
    """``(label, "")`` for a usable label, else ``(None, reason)``."""
    key = str(raw).strip().lower()
    if key in EXCLUDED_LABELS:
        return None, "excluded_label"
    label = normalize_label(raw)
    if label is None:
        return None, "unknown_label"
    if label == NEUTRAL and not include_neutral:
        return None, "excluded_label"
    return label, ""


def is_quiet_file(path: Path) -> bool:
    """Documentation/metadata/hidden files that adapters skip without a rejection."""
    name = path.name.lower()
    return (
        name.startswith(".")
        or name.startswith("~$")
        or path.suffix.lower() in QUIET_SUFFIXES
        or name in QUIET_NAMES
        or path.stem.lower() in QUIET_NAMES
    )


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _escape_surrogate(match: re.Match) -> str:
    code = ord(match.group())
    # os.fsdecode maps each byte of a file name that is not UTF-8 to U+DC80..U+DCFF: show the byte.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def display_name(path: str | os.PathLike) -> str:
    """``path`` as UTF-8-encodable text: bytes of a file name that are not UTF-8 (which Python
    keeps as lone surrogates) become ``\\xNN`` escapes, any other lone surrogate ``\\uNNNN``, so
    terminals, CSV, parquet, JSON and YAML never fail on them."""
    return _SURROGATE.sub(_escape_surrogate, os.fspath(path))


class SeenFolders:
    """The folders a walk has entered, by ``(st_dev, st_ino)``.

    Following symlinks, a folder can be reached twice: through a loop back to an enclosing
    folder (``os.walk``/``shutil.copytree`` would then repeat its files until the path is too
    long and fail) or through a second link. :meth:`repeats` names the sub-folders to skip and
    records each as a rejection, so every file is listed once and every repeat reported once.
    """

    def __init__(self, root: Path):
        self.first: dict[tuple[int, int], Path] = {}
        self.rejections: list[Rejection] = []
        self._seen(Path(root))

    def _seen(self, path: Path) -> Path | None:
        """The path under which the folder ``path`` was first entered; None if it is new (or
        not a folder)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISDIR(st.st_mode):
            return None
        first = self.first.setdefault((st.st_dev, st.st_ino), path)
        return None if first == path else first

    def repeats(self, folder: str | os.PathLike, names: list[str]) -> set[str]:
        """Of the entries ``names`` of ``folder``: remember the new sub-folders, return (and
        record as rejections) those already entered under another path."""
        skipped = set()
        for name in sorted(names):
            path = Path(folder) / name
            first = self._seen(path)
            if first is None:
                continue
            skipped.add(name)
            if path.is_relative_to(first):
                self.rejections.append(Rejection(str(path), "symlink_loop", f"links back to {first}"))
            else:
                self.rejections.append(Rejection(str(path), "repeated_folder", f"same folder as {first}"))
        return skipped


def walk_files(root: Path, result: ScanResult | None = None) -> list[Path]:
    """All regular files below ``root`` (following symlinks), sorted, hidden dirs skipped.

    A folder reached again through a symlink is walked once; with ``result`` each repeat is
    recorded there (``symlink_loop`` / ``repeated_folder``)."""
    seen = SeenFolders(root)
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        visible = [d for d in dirnames if not d.startswith(".")]
        skipped = seen.repeats(dirpath, visible)
        dirnames[:] = sorted(d for d in visible if d not in skipped)
        for fn in sorted(filenames):
            out.append(Path(dirpath) / fn)
    if result is not None:
        result.rejections.extend(seen.rejections)
    return out


def iter_images(root: Path, result: ScanResult | None = None) -> list[Path]:
    """Image files below ``root``; other files are rejected (``not_an_image``) or quietly
    counted (documentation, hidden files) when ``result`` is given."""
    images = []
    for p in walk_files(root, result):
        if is_image_name(p):
            images.append(p)
        elif result is not None:
            if is_quiet_file(p):
                result.bump("ignored_files")
            else:
                result.reject(p, "not_an_image", p.suffix or "no extension")
    return images


def find_dir(root: Path, name: str, max_depth: int = 3) -> Path | None:
    """Breadth-first search for a directory called ``name`` (case-insensitive), root included."""
    want = name.lower()
    level = [root]
    for depth in range(max_depth + 1):
        nxt: list[Path] = []
        for d in level:
            if d.name.lower() == want and d.is_dir():
                return d
            if depth < max_depth:
                try:
                    nxt.extend(sorted(c for c in d.iterdir() if c.is_dir() and not c.name.startswith(".")))
                except OSError:
                    continue
        level = nxt
    return None


_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def read_landmarks_txt(path: str | os.PathLike, n_points: int = 68) -> np.ndarray:
    """Parse a landmark text file: ``n_points`` rows of ``x y`` (whitespace or comma separated,
    scientific notation allowed). Returns float64 (n_points, 2); raises ValueError otherwise."""
    path = Path(path)
    try:
        text = path.read_text(errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable: {exc}") from exc
    values = [float(v) for v in _NUM.findall(text)]
    if len(values) != 2 * n_points:
        raise ValueError(f"expected {n_points} x y pairs ({2 * n_points} numbers), found {len(values)}")
    arr = np.asarray(values, dtype=np.float64).reshape(n_points, 2)
    if not np.all(np.isfinite(arr)):
        raise ValueError("non-finite coordinates")
    return arr


def numeric_sort_key(path: Path) -> tuple:
    """Sort frames by the last number in their stem (``frame_9`` before ``frame_10``)."""
    nums = re.findall(r"\d+", path.stem)
    return (int(nums[-1]) if nums else -1, path.name)


def expression_summary() -> str:
    return ", ".join(EXPRESSIONS)
