"""Profiles: named sets of ``params.yaml`` values, such as the paper's full study.

A profile is a YAML file in ``profiles/`` (or any path) with a ``description`` and a ``set``
mapping of dotted ``params.yaml`` keys to values, the same keys ``fer-xai -S`` and
``dvc exp run -S`` take. :func:`apply_profile` writes them through :mod:`fer_xai.params_edit`:
every other key, comment and blank line stays; a changed key's end-of-line comment becomes
``# <profile> profile[: <the profile's comment>]``; an invalid result leaves ``params.yaml``
byte-identical. A value that is a list of named entries (``data.datasets``) is merged by name:
an entry already in ``params.yaml`` (registered by ``fer-xai data add`` with its adapter and
options) is kept as it is, entries the profile does not list are dropped.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .config import load_params
from .errors import FerXaiError
from .params_edit import (
    InvalidParamsError,
    NotAMappingError,
    edit_params,
    round_trip_yaml,
    set_trailing_blank_lines,
    trailing_blank_lines,
)
from .paths import repo_root, resolve

PROFILES_DIR = "profiles"


UNSET: Any = object()  # a key that params.yaml does not have (Change.old)


class ProfileError(FerXaiError):
    pass


@dataclass
class Profile:
    name: str
    path: Path
    description: str
    values: dict[str, Any]  # dotted key -> plain value
    doc: Any  # the ruamel round-trip document (keeps number formats and comments)

    def comment(self, key: str) -> str:
        """The profile's own end-of-line comment on ``key`` (first line only), or ''."""
        items = getattr(self.doc["set"], "ca", None)
        tok = items.items.get(key) if items is not None else None
        if not tok or tok[2] is None:
            return ""
        first = tok[2].value.lstrip().split("\n", 1)[0]
        return first.lstrip("#").strip()


@dataclass
class Change:
    key: str
    old: Any  # UNSET when params.yaml does not have the key
    new: Any


def profiles_dir() -> Path:
    return repo_root() / PROFILES_DIR


def available() -> list[str]:
    d = profiles_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def find_profile(name: str) -> Path:
    """``name`` as a file path, else ``profiles/<name>.yaml``; a clear error listing the choices."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    cand = profiles_dir() / f"{name}.yaml"
    if cand.is_file():
        return cand
    have = ", ".join(available()) or "none"
    raise ProfileError(f"profile {name!r} not found: no file {p if p.suffix else cand} "
                       f"(profiles in {profiles_dir()}: {have})")


def load_profile(name: str) -> Profile:
    path = find_profile(name)
    text = path.read_text()
    try:
        plain = yaml.safe_load(text) or {}
        doc = round_trip_yaml().load(text)
    except Exception as exc:  # yaml.YAMLError / ruamel errors
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(plain, dict) or not isinstance(plain.get("set"), dict) or not plain["set"]:
        raise ProfileError(f"{path}: expected a mapping with a non-empty 'set' of dotted.key: value")
    unknown = sorted(set(plain) - {"description", "set"})
    if unknown:
        raise ProfileError(f"{path}: unknown top-level key(s) {unknown}; expected 'description' and 'set'")
    bad = [k for k in plain["set"] if not isinstance(k, str) or not all(k.split("."))]
    if bad:
        raise ProfileError(f"{path}: keys must be dotted params.yaml paths, got {bad}")
    return Profile(path.stem, path, str(plain.get("description") or "").strip(), plain["set"], doc)


# ----------------------------------------------------------------------------- planning


def _get(tree: Any, key: str) -> Any:
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return UNSET
        node = node[part]
    return node


def _is_named_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(e, dict) and "name" in e for e in v)


def merged_value(old: Any, new: Any) -> Any:
    """The value ``apply`` writes: ``new``, except that named entries already present are kept."""
    if _is_named_list(new) and _is_named_list(old):
        by_name = {e["name"]: e for e in old}
        return [copy.deepcopy(by_name.get(e["name"], e)) for e in new]
    return new


def plan(params_file: Path, profile: Profile) -> list[Change]:
    """Every key of the profile whose value in ``params_file`` differs, with old and new values."""
    current = yaml.safe_load(params_file.read_text()) or {}
    changes = []
    for key, value in profile.values.items():
        old = _get(current, key)
        new = merged_value(None if old is UNSET else old, value)
        if old is UNSET or old != new:
            changes.append(Change(key, old, new))
    return changes


# ----------------------------------------------------------------------------- applying


def apply_profile(params_file: Path, profile: Profile) -> list[Change]:
    """Write ``profile`` into ``params_file`` (validated first; untouched when invalid)."""
    changes = plan(params_file, profile)
    if not changes:
        return []
    try:
        edit_params(params_file, lambda doc: _write_changes(doc, changes, profile, params_file))
    except NotAMappingError as exc:
        raise ProfileError(str(exc)) from exc
    except InvalidParamsError as exc:
        raise ProfileError(f"{profile.path}: applying it would make {params_file} invalid, left unchanged:\n"
                           f"{exc.problem}") from exc
    return changes


def _write_changes(doc: CommentedMap, changes: list[Change], profile: Profile, params_file: Path) -> None:
    prof_values = profile.doc["set"]
    for ch in changes:
        parts = ch.key.split(".")
        node = doc
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = CommentedMap()
            if not isinstance(child, dict):
                raise ProfileError(f"{profile.path}: {ch.key}: {part} is not a mapping in {params_file}")
            node = child
        # The profile's own ruamel value keeps its number formats (1.0e-4); named lists are
        # merged by name in _update.
        _update(node, parts[-1], prof_values[ch.key])
        note = profile.comment(ch.key)
        _set_comment(node, parts[-1], f"{profile.name} profile" + (f": {note}" if note else ""))


def _set_comment(parent: Any, key: str, text: str) -> None:
    """Replace the first line of ``parent[key]``'s end-of-line comment (blank lines and
    full-line comments that follow it are kept), or add one."""
    items = parent.ca.items.get(key)
    tok = items[2] if items and len(items) > 2 else None
    if tok is not None and isinstance(tok.value, str) and tok.value.lstrip(" ").startswith("#"):
        rest = tok.value[tok.value.index("\n"):] if "\n" in tok.value else "\n"
        tok.value = f"# {text}{rest}"
        return
    if tok is None:
        parent.yaml_add_eol_comment(f"# {text}", key)


def _update(parent: Any, key: str, new: Any) -> None:
    """``parent[key] = new`` in place: mappings key by key, named lists by name, plain lists by
    slice, so the old node's style and comments survive."""
    old = parent.get(key, UNSET) if isinstance(parent, dict) else UNSET
    if isinstance(old, CommentedMap) and isinstance(new, dict):
        for k in [k for k in old if k not in new]:
            del old[k]
        for k, v in new.items():
            _update(old, k, v)
        return
    if isinstance(old, CommentedSeq) and isinstance(new, list):
        if _is_named_list(new) and _is_named_list(list(old)):
            by_name = {e["name"]: e for e in old}
            keep = [by_name.get(e["name"]) for e in new]
            tail = trailing_blank_lines(old[-1]) if len(old) else ""
            old.clear()
            for e, k in zip(new, keep):
                old.append(k if k is not None else _block_entry(e))
            if tail and len(old):
                set_trailing_blank_lines(old[-1], tail)
            return
        if not any(isinstance(e, (dict, list)) for e in list(old) + list(new)):
            old[:] = list(new)
            return
    parent[key] = _to_node(new)


def _block_entry(entry: dict) -> Any:
    """A dataset entry as `fer-xai data add` writes it: block mapping, flow-style options."""
    out = CommentedMap()
    for k, v in entry.items():
        out[k] = _to_node(v)
    return out


def _to_node(v: Any) -> Any:
    """Plain/ruamel value -> ruamel node; mappings and lists of scalars in flow style."""
    if isinstance(v, dict):
        m = CommentedMap()
        for k, x in v.items():
            m[k] = _to_node(x)
        if all(not isinstance(x, (dict, list)) for x in v.values()):
            m.fa.set_flow_style()
        return m
    if isinstance(v, list):
        s = CommentedSeq()
        if _is_named_list(v):
            s.extend(_block_entry(e) for e in v)
        else:
            s.extend(_to_node(x) for x in v)
            if all(not isinstance(x, (dict, list)) for x in v):
                s.fa.set_flow_style()
        return s
    return v


def missing_datasets(params_file: Path) -> list[str]:
    """Registered datasets whose folder ``<data.raw_dir>/<name>`` does not exist yet."""
    p = load_params(params_file)
    raw = resolve(p.data.raw_dir)
    return [d.name for d in p.data.datasets if not (raw / d.name).exists()]
