"""What data a result came from: DVC's recorded hashes of the prepared faces and the folds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from .layout import PREPARED_MANIFEST
from .paths import repo_root


def _lock_hashes() -> dict[str, str]:
    lock = repo_root() / "dvc.lock"
    if not lock.is_file():
        return {}
    data = yaml.safe_load(lock.read_text()) or {}
    out: dict[str, str] = {}
    for stage in (data.get("stages") or {}).values():
        for o in stage.get("outs") or []:
            if "md5" in o:
                out[str(o["path"])] = str(o["md5"])
    return out


def data_version(prepared_dir: str, folds_file: str) -> str:
    """``<prepared md5>+<folds md5>`` from dvc.lock (what ``dvc repro`` recorded), else a local md5
    of the manifest and folds file prefixed ``local:`` (a run outside DVC)."""
    hashes = _lock_hashes()
    a, b = hashes.get(prepared_dir.rstrip("/")), hashes.get(folds_file)
    if a and b:
        return f"{a.removesuffix('.dir')}+{b}"
    h = hashlib.md5()
    for p in (Path(repo_root() / prepared_dir / PREPARED_MANIFEST), Path(repo_root() / folds_file)):
        h.update(p.read_bytes() if p.is_file() else b"")
    return f"local:{h.hexdigest()}"
