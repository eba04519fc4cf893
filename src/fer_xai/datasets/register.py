"""Registering a dataset in ``params.yaml``: ``{name, adapter, options}`` under ``data.datasets``,
written through :mod:`fer_xai.params_edit` (comments kept, validated before the file changes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..config import DataParams
from ..params_edit import (
    InvalidParamsError,
    NotAMappingError,
    edit_params,
    set_trailing_blank_lines,
    trailing_blank_lines,
)
from .validation import DatasetAddError


def register_dataset(params_file: Path, name: str, adapter: str, options: dict[str, Any]) -> str:
    """Append/update ``{name, adapter, options}`` in ``data.datasets``, keeping comments.

    Returns ``"added"`` or ``"updated"``. A result that is not a valid configuration is
    refused and the file left byte-identical."""
    try:
        return edit_params(params_file, lambda doc: _set_entry(doc, name, adapter, options))
    except NotAMappingError as exc:
        raise DatasetAddError(f"{params_file}: top level is not a mapping; cannot register '{name}'") from exc
    except InvalidParamsError as exc:
        raise DatasetAddError(f"{params_file}: registering '{name}' made it invalid, left unchanged:\n"
                              f"{exc.problem}") from exc


def _set_entry(doc: CommentedMap, name: str, adapter: str, options: dict[str, Any]) -> str:
    data = doc.get("data")
    if data is None:
        data = doc["data"] = CommentedMap()
    datasets = data.get("datasets")
    if datasets is None:
        # Keep the effective default list (the embedded synthetic set) when the key is new.
        datasets = data["datasets"] = CommentedSeq()
        for entry in DataParams().datasets:
            datasets.append(CommentedMap(entry.model_dump()))
    opts = CommentedMap(options)
    opts.fa.set_flow_style()
    for existing in datasets:
        if isinstance(existing, dict) and existing.get("name") == name:
            existing["adapter"] = adapter
            existing["options"] = opts
            return "updated"
    entry = CommentedMap()
    entry["name"] = name
    entry["adapter"] = adapter
    entry["options"] = opts
    if len(datasets) and isinstance(datasets[-1], dict):
        # The blank line before the next section stays after the list's last entry.
        tail = trailing_blank_lines(datasets[-1], remove=True)
        if tail:
            set_trailing_blank_lines(entry, tail)
    datasets.append(entry)
    return "added"
