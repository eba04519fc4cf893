"""Generic adapters for datasets without a dedicated one (and for the embedded synthetic set).

``folders``  ``<root>/<label>/<files>``: the label is the name of the folder ``label_level``
             levels below the root (0 = its direct sub-folders; files may sit deeper inside
             it). The subject comes from ``subject_pattern``, a regular expression searched in
             the file stem (``subject_source: name``, default) or in the path relative to the
             root with ``/`` separators (``subject_source: path``); the named group
             ``subject`` is used, else group 1, else the whole match.

             Default pattern ``^(?P<subject>[A-Za-z]+\\d*|\\d+)``: the leading run of letters plus
             any digits glued to it: ``S005_001.png -> S005``, ``KA.AN1.39.tiff -> KA``,
             ``MK1_0007.jpg -> MK1``, ``F001-happy.png -> F001``; a name starting with digits
             gives the leading digits. Layout ``<root>/<subject>/<label>/<files>``:
             ``label_level: 1, subject_source: path, subject_pattern: "^(?P<subject>[^/]+)/"``.

``tokens``   label from a word in the file name (``S01_happy_2.jpg``) or, failing that, from
             the nearest folder whose name is a label; words shorter than ``min_token_length``
             (default 3) are ignored so initials such as ``SA`` are not read as "sadness".
             ``label_pattern`` (regex with a ``label`` group on the relative path) overrides
             the word search. Subject (``subject_source: auto``): the first folder below the
             root when that folder is not a label, else ``subject_pattern`` on the file stem
             with the label words removed. Not used by auto-detection (too permissive).

``csv``      a manifest (option ``manifest``, default ``manifest.csv``, relative to the root)
             with columns ``path,subject,label`` (paths relative to the manifest's folder),
             optional ``landmarks`` (a text file of 68 ``x y`` rows, same relative rule) and
             ``mask`` (a mask image) and ``neutral`` (the same face without expression,
             pixel-aligned with the image); every other column is kept in ``meta`` (numbers
             converted). The manifest and every path in it must stay inside the root (no
             absolute paths, no ``..`` leading out): DVC versions only the dataset folder, so
             anything outside it would be read unversioned (:class:`ManifestError`). The
             embedded synthetic dataset is written in this layout.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

from ..images import is_image_name
from .base import (
    EXCLUDED_LABELS,
    Adapter,
    AdapterOptionError,
    LayoutError,
    RawRecord,
    ScanResult,
    classify_label,
    is_quiet_file,
    read_landmarks_txt,
    walk_files,
)

DEFAULT_SUBJECT_PATTERN = r"^(?P<subject>[A-Za-z]+\d*|\d+)"
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+")


def compile_pattern(adapter: str, key: str, pattern: str, group: str) -> re.Pattern[str]:
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise AdapterOptionError(f"adapter '{adapter}': option {key}: bad regex {pattern!r}: {exc}") from exc
    if group not in rx.groupindex and rx.groups == 0 and group == "label":
        raise AdapterOptionError(f"adapter '{adapter}': option {key}: needs a group named '{group}'")
    return rx


def match_group(rx: re.Pattern[str], text: str, group: str) -> str | None:
    m = rx.search(text)
    if m is None:
        return None
    if group in rx.groupindex:
        value = m.group(group)
    elif rx.groups >= 1:
        value = m.group(1)
    else:
        value = m.group(0)
    value = (value or "").strip()
    return value or None


def _label_or_excluded(name: str) -> bool:
    return name.strip().lower() in EXCLUDED_LABELS or classify_label(name, True)[0] is not None


def _handle_non_image(path: Path, result: ScanResult) -> None:
    if is_quiet_file(path):
        result.bump("ignored_files")
    else:
        result.reject(path, "not_an_image", path.suffix or "no extension")


class FoldersAdapter(Adapter):
    name = "folders"
    layout = "<root>/<label>/<images> (label folders such as happy/, Anger/, sad/ ...)"
    option_defaults = {
        "subject_pattern": (DEFAULT_SUBJECT_PATTERN, "regex giving the subject id (group 'subject' or 1)"),
        "subject_source": ("name", "where subject_pattern is searched: name (file stem) or path (relative path)"),
        "label_level": (0, "depth of the label folder below the root (0 = direct sub-folders)"),
    }

    def matches(self, root: Path, **options: Any) -> bool:
        level = int(options.get("label_level", 0) or 0)
        root = Path(root)
        dirs = [root]
        for _ in range(level + 1):
            dirs = [c for d in dirs if d.is_dir() for c in sorted(d.iterdir())
                    if c.is_dir() and not c.name.startswith(".")]
        for d in dirs:
            if _label_or_excluded(d.name) and any(is_image_name(p) for p in walk_files(d)):
                return True
        return False

    def _scan(self, root: Path, dataset: str, opts: dict[str, Any], result: ScanResult) -> None:
        if opts["subject_source"] not in ("name", "path"):
            raise AdapterOptionError(f"adapter '{self.name}': subject_source must be 'name' or 'path'")
        rx = compile_pattern(self.name, "subject_pattern", opts["subject_pattern"], "subject")
        level = opts["label_level"]
        for path in walk_files(root, result):
            rel = path.relative_to(root)
            if not is_image_name(path):
                _handle_non_image(path, result)
                continue
            if len(rel.parts) < level + 2:
                result.reject(path, "unknown_label", "not inside a label folder")
                continue
            folder = rel.parts[level]
            label, reason = classify_label(folder, opts["include_neutral"])
            if label is None:
                result.reject(path, reason, f"folder {folder!r}")
                continue
            text = path.stem if opts["subject_source"] == "name" else rel.as_posix()
            subject = match_group(rx, text, "subject")
            if subject is None:
                result.reject(path, "no_subject",
                              f"subject_pattern {opts['subject_pattern']!r} does not match {text!r}")
                continue
            result.records.append(
                RawRecord(dataset=dataset, subject=subject, label=label, path=path, meta={"label_folder": folder})
            )


class TokensAdapter(Adapter):
    name = "tokens"
    layout = "images whose file name (or a folder) contains an expression word, e.g. S01_happy_2.jpg"
    option_defaults = {
        "subject_pattern": (DEFAULT_SUBJECT_PATTERN, "regex giving the subject id (group 'subject' or 1)"),
        "subject_source": ("auto", "auto (first folder unless it is a label, else file stem), name or path"),
        "label_pattern": ("", "regex with a 'label' group searched in the relative path (overrides word search)"),
        "min_token_length": (3, "shortest word of a file name taken as a label"),
    }

    def matches(self, root: Path, **options: Any) -> bool:
        opts = self.parse_options({k: v for k, v in options.items() if k in self.all_options()})
        for i, path in enumerate(p for p in walk_files(Path(root)) if is_image_name(p)):
            if i >= 200:
                break
            if self._label_words(path.relative_to(root), opts)[0]:
                return True
        return False

    def _label_words(self, rel: Path, opts: dict[str, Any]) -> tuple[list[str], str]:
        """Raw label words found for a file, and where (``name`` / ``folder`` / ``pattern``)."""
        if opts["label_pattern"]:
            rx = compile_pattern(self.name, "label_pattern", opts["label_pattern"], "label")
            value = match_group(rx, rel.as_posix(), "label")
            return ([value] if value else []), "pattern"
        min_len = opts["min_token_length"]
        words = [w for w in _WORD_SPLIT.split(Path(rel.name).stem) if len(w) >= min_len]
        found = [w for w in words if _label_or_excluded(w)]
        if found:
            return found, "name"
        for folder in reversed(rel.parts[:-1]):
            if _label_or_excluded(folder):
                return [folder], "folder"
        return [], ""

    def _scan(self, root: Path, dataset: str, opts: dict[str, Any], result: ScanResult) -> None:
        if opts["subject_source"] not in ("auto", "name", "path"):
            raise AdapterOptionError(f"adapter '{self.name}': subject_source must be auto, name or path")
        rx = compile_pattern(self.name, "subject_pattern", opts["subject_pattern"], "subject")
        for path in walk_files(root, result):
            rel = path.relative_to(root)
            if not is_image_name(path):
                _handle_non_image(path, result)
                continue
            words, source = self._label_words(rel, opts)
            if not words:
                result.reject(path, "unknown_label", "no expression word in the name or folders")
                continue
            kinds = {w.lower() if w.lower() in EXCLUDED_LABELS else classify_label(w, True)[0] for w in words}
            if len(kinds) > 1:
                result.reject(path, "ambiguous_label", "+".join(words))
                continue
            label, reason = classify_label(words[0], opts["include_neutral"])
            if label is None:
                result.reject(path, reason, words[0])
                continue
            subject = self._subject(rel, words if source == "name" else [], rx, opts)
            if subject is None:
                result.reject(path, "no_subject", f"cannot derive a subject from {rel.as_posix()!r}")
                continue
            result.records.append(
                RawRecord(dataset=dataset, subject=subject, label=label, path=path, meta={"label_source": source})
            )

    @staticmethod
    def _subject(rel: Path, label_words: list[str], rx: re.Pattern[str], opts: dict[str, Any]) -> str | None:
        source = opts["subject_source"]
        if source == "path":
            return match_group(rx, rel.as_posix(), "subject")
        if source == "auto" and len(rel.parts) > 1 and not _label_or_excluded(rel.parts[0]):
            return rel.parts[0]
        stem = Path(rel.name).stem
        if label_words:
            drop = {w.lower() for w in label_words}
            stem = "_".join(w for w in _WORD_SPLIT.split(stem) if w and w.lower() not in drop)
        return match_group(rx, stem, "subject")


# ----------------------------------------------------------------------------- csv manifest

REQUIRED_COLUMNS = ("path", "subject", "label")


class ManifestError(LayoutError):
    """The manifest, or a path in one of its rows, lies outside the dataset folder. A
    LayoutError, so ``data add`` and ``prepare`` report it like any layout problem."""

    def __init__(self, where: str, problem: str):
        ValueError.__init__(self, f"{where}: {problem}")  # not LayoutError's "layouts tried" text
        self.root, self.tried, self.requested = where, {}, None


def _path_inside(root: Path, base: Path, value: str) -> Path:
    """``value`` relative to ``base``, normalised; ValueError when it is absolute or leads out of
    ``root`` (compared lexically: the copy in data/raw keeps the names, not the symlinks)."""
    if Path(value).is_absolute():
        raise ValueError(f"{value!r} is an absolute path; give it relative to {base}")
    path = Path(os.path.normpath(base / value))
    if not path.is_relative_to(root):
        raise ValueError(f"{value!r} is outside the dataset folder {root}")
    return path


def _convert(value: str) -> Any:
    s = value.strip()
    if s == "":
        return None
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


class CsvAdapter(Adapter):
    name = "csv"
    layout = "a manifest.csv with columns path,subject,label[,landmarks,mask,...] in the root"
    option_defaults = {
        "manifest": ("manifest.csv", "manifest file, relative to the root"),
    }

    @staticmethod
    def manifest_path(root: Path, manifest: str) -> Path:
        p = Path(manifest)
        return p if p.is_absolute() else Path(root) / p

    @staticmethod
    def _header(path: Path) -> list[str] | None:
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                row = next(csv.reader(fh), None)
        except (OSError, UnicodeDecodeError):
            return None
        return [c.strip().lower() for c in row] if row else None

    def matches(self, root: Path, **options: Any) -> bool:
        path = self.manifest_path(Path(root), str(options.get("manifest") or "manifest.csv"))
        header = self._header(path) if path.is_file() else None
        return header is not None and all(c in header for c in REQUIRED_COLUMNS)

    def _scan(self, root: Path, dataset: str, opts: dict[str, Any], result: ScanResult) -> None:
        try:
            manifest = _path_inside(root, root, opts["manifest"])
        except ValueError as exc:
            raise ManifestError(f"adapter '{self.name}' option manifest", str(exc)) from None
        base = manifest.parent

        def row_path(lineno: int, value: str) -> Path:
            try:
                return _path_inside(root, base, value)
            except ValueError as exc:
                raise ManifestError(f"{manifest}: row {lineno}", str(exc)) from None

        seen: set[Path] = set()
        with manifest.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in fields]
            if missing:  # pragma: no cover - matches() already checked
                raise LayoutError(manifest, {self.name: self.layout}, requested=self.name)
            for lineno, raw_row in enumerate(reader, start=2):
                row = {
                    (k or "").strip().lower(): (v or "").strip() if isinstance(v, str) else ""
                    for k, v in raw_row.items()
                }
                where = f"{manifest.name}:{lineno}"
                if not row.get("path"):
                    result.reject(where, "missing_file", "empty path")
                    continue
                path = row_path(lineno, row["path"])
                if path in seen:
                    result.reject(path, "duplicate_row", where)
                    continue
                seen.add(path)
                if not is_image_name(path):
                    result.reject(path, "not_an_image", where)
                    continue
                if not path.is_file():
                    result.reject(path, "missing_file", where)
                    continue
                label, reason = classify_label(row.get("label", ""), opts["include_neutral"])
                if label is None:
                    result.reject(path, reason, f"{row.get('label', '')!r} ({where})")
                    continue
                subject = row.get("subject", "")
                if not subject:
                    result.reject(path, "no_subject", where)
                    continue
                landmarks = None
                if row.get("landmarks"):
                    lm_path = row_path(lineno, row["landmarks"])
                    try:
                        landmarks = read_landmarks_txt(lm_path)
                    except ValueError as exc:
                        result.reject(lm_path, "bad_landmarks", str(exc)[:120])
                mask_path = None
                if row.get("mask"):
                    mp = row_path(lineno, row["mask"])
                    if mp.is_file():
                        mask_path = mp
                    else:
                        result.reject(mp, "missing_mask", where)
                neutral_path = None
                if row.get("neutral"):
                    neutral_path = row_path(lineno, row["neutral"])
                    if not neutral_path.is_file():
                        result.reject(neutral_path, "missing_neutral", where)
                        neutral_path = None
                meta = {
                    k: _convert(v) for k, v in row.items()
                    if k and k not in (*REQUIRED_COLUMNS, "landmarks", "mask", "neutral")
                }
                result.records.append(
                    RawRecord(
                        dataset=dataset,
                        subject=subject,
                        label=label,
                        path=path,
                        landmarks=landmarks,
                        mask_path=mask_path,
                        meta=meta,
                        neutral_path=neutral_path,
                    )
                )
