"""Dataset adapters: read each dataset in the layout its publisher distributes.

Public API::

    from fer_xai.datasets import scan_dataset, RawRecord, ScanResult, Rejection, ADAPTERS
    result = scan_dataset(Path("data/raw/jaffe"), "jaffe", adapter="auto", options={})
    result.records      # list[RawRecord]: dataset, subject, label, path, landmarks, mask_path, meta
    result.rejections   # list[Rejection]: path, reason, detail

``adapter="auto"`` tries :data:`AUTO_ORDER` (most specific layouts first) and takes the first
adapter whose ``matches`` is true. Options are validated per adapter (unknown keys are an
:class:`AdapterOptionError`); every adapter accepts ``include_neutral`` (default False).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import (
    Adapter,
    AdapterOptionError,
    LayoutError,
    RawRecord,
    Rejection,
    ScanResult,
    read_landmarks_txt,
)
from .bu4dfe import BU4DFEAdapter
from .ckplus import CKPlusAdapter
from .fega import FegaAdapter
from .generic import CsvAdapter, FoldersAdapter, TokensAdapter
from .jaffe import JaffeAdapter
from .wsefep import WsefepAdapter

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (CsvAdapter(), CKPlusAdapter(), BU4DFEAdapter(), JaffeAdapter(), WsefepAdapter(),
              FegaAdapter(), FoldersAdapter(), TokensAdapter())
}

# Auto-detection order: an explicit manifest wins, then the datasets with distinctive layouts,
# then the generic label-folder layout. ``tokens`` is never auto-detected (too permissive).
AUTO_ORDER: tuple[str, ...] = ("csv", "ckplus", "bu4dfe", "jaffe", "wsefep", "fega", "folders")


def layouts_tried() -> dict[str, str]:
    return {name: ADAPTERS[name].layout for name in AUTO_ORDER}


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise AdapterOptionError(
            f"unknown adapter {name!r}; known: auto, {', '.join(ADAPTERS)}"
        ) from None


def detect_adapter(root: str | os.PathLike, options: dict[str, Any] | None = None) -> Adapter:
    """The first adapter of :data:`AUTO_ORDER` whose layout matches ``root``; LayoutError if none."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(root, {"any": "an existing folder"}, requested="any")
    for name in AUTO_ORDER:
        adapter = ADAPTERS[name]
        try:
            if adapter.matches(root, **(options or {})):
                return adapter
        except (OSError, AdapterOptionError):
            continue
    raise LayoutError(root, layouts_tried())


def scan_dataset(
    root: str | os.PathLike,
    dataset: str,
    adapter: str = "auto",
    options: dict[str, Any] | None = None,
) -> ScanResult:
    """Scan ``root`` with the named adapter (or the auto-detected one)."""
    chosen = detect_adapter(root, options) if adapter in ("auto", "", None) else get_adapter(adapter)
    return chosen.scan(Path(root), dataset, **(options or {}))


__all__ = [
    "ADAPTERS", "AUTO_ORDER", "Adapter", "AdapterOptionError", "LayoutError", "RawRecord",
    "Rejection", "ScanResult", "detect_adapter", "get_adapter", "layouts_tried",
    "read_landmarks_txt", "scan_dataset",
]
