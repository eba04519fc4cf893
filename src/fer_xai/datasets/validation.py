"""Checking a dataset folder for ``fer-xai data add`` / ``data validate``: scan it with an adapter,
refuse it when nothing is usable, and build the validation report written next to it
(``<data.raw_dir>/NAME.validation.json``: counts per label and subject, content duplicates,
rejections)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..errors import FerXaiError
from ..labels import EXPRESSIONS, NEUTRAL
from ..paths import write_json_atomic
from . import detect_adapter, get_adapter
from .base import AdapterOptionError, LayoutError, ScanResult, display_name

MAX_LISTED_REJECTIONS = 1000
MAX_LISTED_NAMES = 5


class DatasetAddError(FerXaiError):
    """A dataset that cannot be added or validated; the message names the folder and the fix."""


def rel(path: str | os.PathLike, base: Path) -> str:
    """``path`` relative to ``base`` in POSIX form, or as given when it is not inside ``base``."""
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return str(path)


def scan_folder(root: Path, dataset: str, adapter: str, options: dict[str, Any]) -> ScanResult:
    """Scan ``root`` with ``adapter`` (``auto``: detected); layout and option problems are a
    :class:`DatasetAddError` naming the folder."""
    try:
        chosen = detect_adapter(root, options) if adapter == "auto" else get_adapter(adapter)
        return chosen.scan(root, dataset, **options)
    except LayoutError as exc:
        raise DatasetAddError(str(exc)) from exc
    except AdapterOptionError as exc:
        raise DatasetAddError(f"{root}: {exc}") from exc


def _by_reason(scan: ScanResult) -> str:
    return ", ".join(f"{k}: {v}" for k, v in scan.rejection_counts().items()) or "no image files"


def require_usable(scan: ScanResult, root: Path) -> None:
    if scan.records:
        return
    raise DatasetAddError(
        f"{display_name(root)}: zero usable images with adapter '{scan.adapter}' ({_by_reason(scan)}). "
        "Check the layout/options (`fer-xai data adapters`) or write a manifest.csv for --adapter csv."
    )


def require_usable_copy(copy: Path, name: str, adapter: str, options: dict[str, Any],
                        src: Path, dest: Path) -> None:
    """Refuse a copy that lost the images its source has (the copy leaves out __MACOSX, .git,
    .dvc and dereferences symlinks), before it replaces or registers anything."""
    try:
        scan = get_adapter(adapter).scan(copy, name, **options)
    except LayoutError:
        problem = "its layout is not recognised in the copy"
    else:
        if scan.records:
            return
        problem = _by_reason(scan)
    raise DatasetAddError(
        f"dataset '{name}': the copy of {display_name(src)} for {dest} has no usable image "
        f"(adapter '{adapter}': {problem}); the copy was removed, nothing else changed"
    )


def require_dvc_names(root: Path, src: Path) -> None:
    """DVC cannot store a file name that is not valid UTF-8 (`dvc add` dies with an encoding
    error): refuse such a copy with the names, while nothing is registered yet."""
    bad = sorted(display_name(Path(dirpath, n).relative_to(root))
                 for dirpath, dirnames, filenames in os.walk(root)
                 for n in (*dirnames, *filenames)
                 if display_name(n) != n)  # only undecodable bytes are escaped
    if bad:
        shown = ", ".join(bad[:MAX_LISTED_NAMES]) + (", ..." if len(bad) > MAX_LISTED_NAMES else "")
        raise DatasetAddError(
            f"{display_name(src)}: {len(bad)} file name(s) are not valid UTF-8, which DVC cannot track: "
            f"{shown}. Rename them (e.g. with convmv) or add the dataset with --no-dvc."
        )


def content_duplicates(paths: list[Path]) -> list[list[Path]]:
    """Groups of files with identical bytes (sizes compared first; only same-size files hashed)."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for p in paths:
        try:
            by_size[p.stat().st_size].append(p)
        except OSError:
            continue
    groups: list[list[Path]] = []
    for same in by_size.values():
        if len(same) < 2:
            continue
        by_hash: dict[str, list[Path]] = defaultdict(list)
        for p in same:
            h = hashlib.sha1()
            with p.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            by_hash[h.hexdigest()].append(p)
        groups.extend(sorted(g) for g in by_hash.values() if len(g) > 1)
    return sorted(groups)


def _warnings(scan: ScanResult, labels: Counter, n_subjects: int, n_dups: int) -> list[str]:
    warnings: list[str] = []
    missing = [e for e in EXPRESSIONS if not labels.get(e)]
    if missing:
        warnings.append(f"no images for: {', '.join(missing)}")
    if n_dups:
        warnings.append(f"{n_dups} group(s) of byte-identical images")
    if n_subjects < 2 and scan.records:
        warnings.append("a single subject: subject-grouped folds are impossible")
    if scan.rejections:
        warnings.append(f"{len(scan.rejections)} file(s) rejected while scanning")
    return warnings


def build_report(scan: ScanResult, dataset: str, root: Path, options: dict[str, Any],
                 source: Path | None = None, linked: bool = False) -> dict[str, Any]:
    """The validation report written next to the dataset (JSON-serialisable)."""
    records = scan.records
    labels = Counter(r.label for r in records)
    label_names = list(EXPRESSIONS) + ([NEUTRAL] if labels.get(NEUTRAL) else [])
    per_subject: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        per_subject[r.subject][r.label] += 1
    dups = content_duplicates(sorted({r.path for r in records}))
    unknown = Counter(r.detail for r in scan.rejections if r.reason == "unknown_label")
    return _printable({
        "dataset": dataset,
        "adapter": scan.adapter,
        "options": options,
        "path": str(root),
        "source": str(source) if source is not None else None,
        "linked": linked,
        "checked_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "ok": bool(records),
        "n_images": len(records),
        "n_subjects": len(per_subject),
        "labels": {name: int(labels.get(name, 0)) for name in label_names},
        "subjects": {s: int(sum(c.values())) for s, c in sorted(per_subject.items())},
        "labels_per_subject": {s: dict(sorted(c.items())) for s, c in sorted(per_subject.items())},
        "with_landmarks": sum(r.landmarks is not None for r in records),
        "with_masks": sum(r.mask_path is not None for r in records),
        "duplicates": [[rel(p, root) for p in g] for g in dups],
        "unknown_labels": dict(sorted(unknown.items())),
        "rejections": {
            "total": len(scan.rejections),
            "by_reason": scan.rejection_counts(),
            "items": [{"path": rel(r.path, root), "reason": r.reason, "detail": r.detail}
                      for r in scan.rejections[:MAX_LISTED_REJECTIONS]],
            "truncated": len(scan.rejections) > MAX_LISTED_REJECTIONS,
        },
        "info": scan.info,
        "warnings": _warnings(scan, labels, len(per_subject), len(dups)),
    })


def _printable(value: Any) -> Any:
    """``value`` with every string through :func:`display_name`: a file name that is not UTF-8
    would otherwise break the terminal, or JSON readers that reject lone surrogates."""
    if isinstance(value, str):
        return display_name(value)
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


def write_report(raw_dir: Path, name: str, report: dict[str, Any]) -> Path:
    """Write ``report`` to ``<raw_dir>/<name>.validation.json``; returns that path."""
    return write_json_atomic(raw_dir / f"{name}.validation.json", report)
