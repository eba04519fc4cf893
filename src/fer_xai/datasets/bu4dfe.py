"""BU-4DFE (Yin et al. 2008), 2D texture frames of the 101 subjects' 3D video sequences::

    <root>/F001/Angry/000.jpg 001.jpg ...   subjects F### / M###
    <root>/BU_4DFE/F001/...                 (also accepted: a BU_4DFE / BU4DFE / BU-4DFE folder)

Expression folders: Angry, Disgust, Fear, Happy, Sad, Surprise. Each sequence runs
neutral -> apex -> neutral, so the apex is taken around the middle of the sorted frames:

``apex_frames`` (default 1)   how many frames per sequence; 1 = the middle frame
``apex_window`` (default 0.2) fraction of the sequence, centred on the middle, from which
                              ``apex_frames`` > 1 frames are taken evenly spaced

With ``include_neutral`` the first frame of each sequence is returned as neutral. Frames are
sorted by the last number in their name. 3D files (``.wrl``, ``.bnd``, ``.obj`` ...) and
documentation are ignored quietly; other folders in a subject folder are rejected
(``unknown_label``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..images import is_image_name
from .base import Adapter, AdapterOptionError, RawRecord, ScanResult, classify_label, is_quiet_file, numeric_sort_key

_SUBJECT = re.compile(r"^[FM]\d{3}$", re.IGNORECASE)
_CONTAINERS = ("bu_4dfe", "bu4dfe", "bu-4dfe")
_QUIET_3D = {".wrl", ".bnd", ".obj", ".ply", ".off", ".vrml", ".pse", ".mtl"}


def apex_indices(n: int, apex_frames: int = 1, apex_window: float = 0.2) -> list[int]:
    """Frame indices (0-based, sorted, unique) around the middle of an ``n``-frame sequence."""
    if n <= 0:
        return []
    mid = n // 2
    if apex_frames <= 1 or n == 1:
        return [mid]
    half = apex_window * n / 2.0
    lo, hi = max(0.0, mid - half), min(n - 1.0, mid + half)
    idx = np.rint(np.linspace(lo, hi, apex_frames)).astype(int)
    return sorted({int(i) for i in np.clip(idx, 0, n - 1)})


class BU4DFEAdapter(Adapter):
    name = "bu4dfe"
    layout = "subject folders F###/M### (optionally inside BU_4DFE/) holding Angry/Disgust/.../Surprise frame folders"
    option_defaults = {
        "apex_frames": (1, "frames per sequence taken around the middle (apex)"),
        "apex_window": (0.2, "fraction of the sequence, centred on the middle, to take apex frames from"),
    }

    @staticmethod
    def subjects_dir(root: Path) -> Path | None:
        root = Path(root)
        candidates = [root] + sorted(
            c for c in root.iterdir() if c.is_dir() and c.name.lower() in _CONTAINERS
        ) if root.is_dir() else []
        for cand in candidates:
            subjects = [c for c in cand.iterdir() if c.is_dir() and _SUBJECT.match(c.name)]
            for s in subjects[:5]:
                if any(c.is_dir() and _is_expression(c.name) for c in s.iterdir()):
                    return cand
        return None

    def matches(self, root: Path, **options: Any) -> bool:
        return self.subjects_dir(Path(root)) is not None

    def _scan(self, root: Path, dataset: str, opts: dict[str, Any], result: ScanResult) -> None:
        k, window = opts["apex_frames"], opts["apex_window"]
        if k < 1:
            raise AdapterOptionError(f"adapter 'bu4dfe': apex_frames must be >= 1, got {k}")
        if not 0.0 < window <= 1.0:
            raise AdapterOptionError(f"adapter 'bu4dfe': apex_window must be in (0, 1], got {window}")
        base = self.subjects_dir(root)
        assert base is not None
        for subj_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not _SUBJECT.match(subj_dir.name):
                result.reject(subj_dir, "no_subject", "not an F###/M### subject folder")
                continue
            subject = subj_dir.name.upper()
            for seq_dir in sorted(subj_dir.iterdir()):
                if seq_dir.name.startswith("."):
                    continue
                if not seq_dir.is_dir():
                    if not (is_quiet_file(seq_dir) or seq_dir.suffix.lower() in _QUIET_3D):
                        result.reject(seq_dir, "not_an_image", "file outside an expression folder")
                    continue
                label, reason = classify_label(seq_dir.name, opts["include_neutral"])
                if label is None:
                    result.reject(seq_dir, reason, f"folder {seq_dir.name!r}")
                    continue
                frames = self._frames(seq_dir, result)
                if not frames:
                    result.reject(seq_dir, "empty_sequence")
                    continue
                meta = {"sequence": f"{subject}_{seq_dir.name}", "n_frames": len(frames)}
                if label != "neutral":
                    for i in apex_indices(len(frames), k, window):
                        result.records.append(RawRecord(
                            dataset=dataset, subject=subject, label=label, path=frames[i],
                            meta={**meta, "frame": i, "apex": True},
                        ))
                if opts["include_neutral"]:
                    # Every sequence starts at neutral (a "Neutral" folder, if any, gives its middle frame).
                    i = len(frames) // 2 if label == "neutral" else 0
                    result.records.append(RawRecord(
                        dataset=dataset, subject=subject, label="neutral", path=frames[i],
                        meta={**meta, "frame": i, "apex": False},
                    ))

    @staticmethod
    def _frames(seq_dir: Path, result: ScanResult) -> list[Path]:
        frames = []
        for p in seq_dir.iterdir():
            if p.is_dir() or p.name.startswith("."):
                continue
            if is_image_name(p):
                frames.append(p)
            elif is_quiet_file(p) or p.suffix.lower() in _QUIET_3D:
                result.bump("ignored_files")
            else:
                result.reject(p, "not_an_image", p.suffix or "no extension")
        return sorted(frames, key=numeric_sort_key)


def _is_expression(name: str) -> bool:
    return classify_label(name, include_neutral=True)[0] is not None
