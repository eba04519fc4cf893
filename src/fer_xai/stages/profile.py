"""``fer-xai profile``: switch ``params.yaml`` between the demo and the paper's full study.

A profile is a YAML file in ``profiles/`` (or any path) with a ``description`` and a ``set``
mapping of dotted ``params.yaml`` keys to values, the same keys ``fer-xai -S`` and
``dvc exp run -S`` take::

    fer-xai profile list                # the profiles in profiles/
    fer-xai profile show paper          # its description and values
    fer-xai profile diff paper          # what `apply` would change in params.yaml
    fer-xai profile apply paper         # write them into params.yaml (comments kept)

``apply`` edits ``params.yaml`` in place with ruamel.yaml: every other key, comment and blank
line stays; a changed key's end-of-line comment becomes ``# <profile> profile[: <the profile's
comment>]``. The result is validated by :mod:`fer_xai.config` before the file is replaced, so an
invalid profile leaves ``params.yaml`` untouched. A value that is a list of named entries
(``data.datasets``) is merged by name: an entry already in ``params.yaml`` (registered by
``fer-xai data add`` with its adapter and options) is kept as it is, entries the profile does not
list are dropped. The demo profile is the ``params.yaml`` in git: ``git checkout params.yaml``
returns to it.
"""

from __future__ import annotations

import copy
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from ..paths import repo_root
from ..redact import redact

log = logging.getLogger(__name__)

PROFILES_DIR = "profiles"
_UNSET = object()


class ProfileError(click.ClickException):
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
    old: Any
    new: Any


def _yaml():
    from ruamel.yaml import YAML

    ry = YAML(typ="rt")
    ry.preserve_quotes = True
    ry.indent(mapping=2, sequence=4, offset=2)
    ry.width = 4096
    keep_null(ry)
    return ry


def keep_null(ry) -> None:
    """Write None as ``null`` (ruamel's round-trip dumper writes an empty value)."""
    ry.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))


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
        doc = _yaml().load(text)
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
            return _UNSET
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
        new = merged_value(None if old is _UNSET else old, value)
        if old is _UNSET or old != new:
            changes.append(Change(key, old, new))
    return changes


# ----------------------------------------------------------------------------- applying


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
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    old = parent.get(key, _UNSET) if isinstance(parent, dict) else _UNSET
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
            tail = _trailing_blank_lines(old[-1]) if len(old) else ""
            old.clear()
            for e, k in zip(new, keep):
                old.append(k if k is not None else _block_entry(e))
            if tail and len(old):
                _set_trailing_blank_lines(old[-1], tail)
            return
        if not any(isinstance(e, (dict, list)) for e in list(old) + list(new)):
            old[:] = list(new)
            return
    parent[key] = _to_node(new)


def _block_entry(entry: dict) -> Any:
    """A dataset entry as `fer-xai data add` writes it: block mapping, flow-style options."""
    from ruamel.yaml.comments import CommentedMap

    out = CommentedMap()
    for k, v in entry.items():
        out[k] = _to_node(v)
    return out


def _to_node(v: Any) -> Any:
    """Plain/ruamel value -> ruamel node; mappings and lists of scalars in flow style."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

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


def _last_key_token(node: Any):
    try:
        last = list(node.keys())[-1]
    except (AttributeError, IndexError):
        return None, None
    items = node.ca.items.get(last)
    return last, (items[2] if items and len(items) > 2 else None)


def _trailing_blank_lines(node: Any) -> str:
    _, tok = _last_key_token(node)
    if tok is None or not isinstance(tok.value, str):
        return ""
    kept = tok.value.rstrip("\n") + "\n"
    return "\n" * (len(tok.value) - len(kept))


def _set_trailing_blank_lines(node: Any, tail: str) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    last, tok = _last_key_token(node)
    if last is None:
        return
    if tok is not None and isinstance(tok.value, str):
        if not tok.value.endswith("\n" + tail):
            tok.value = tok.value.rstrip("\n") + "\n" + tail
        return
    node.ca.items[last] = [None, None, CommentToken("\n" + tail, CommentMark(0), None), None]


def apply_profile(params_file: Path, profile: Profile) -> list[Change]:
    """Write ``profile`` into ``params_file`` (validated first; untouched when invalid)."""
    from ruamel.yaml.comments import CommentedMap

    from ..config import ParamsError, load_params

    changes = plan(params_file, profile)
    if not changes:
        return []
    ry = _yaml()
    original = params_file.read_text()
    doc = ry.load(original)
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise ProfileError(f"{params_file}: top level is not a mapping")
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
    text = _dump(ry, doc)
    tmp = params_file.with_name(f".{params_file.name}.profile-tmp")
    tmp.write_text(text)
    try:
        load_params(tmp)
    except ParamsError as exc:
        tmp.unlink(missing_ok=True)
        raise ProfileError(f"{profile.path}: applying it would make {params_file} invalid, left unchanged:\n"
                           f"{str(exc).replace(str(tmp), str(params_file))}") from exc
    os.replace(tmp, params_file)
    return changes


def _dump(ry, node: Any) -> str:
    buf = io.StringIO()
    ry.dump(node, buf)
    return buf.getvalue()


def missing_datasets(params_file: Path) -> list[str]:
    """Registered datasets whose folder ``<data.raw_dir>/<name>`` does not exist yet."""
    from ..config import load_params
    from ..paths import resolve

    p = load_params(params_file)
    raw = resolve(p.data.raw_dir)
    return [d.name for d in p.data.datasets if not (raw / d.name).exists()]


# ----------------------------------------------------------------------------- CLI


def _fmt(v: Any) -> str:
    if v is _UNSET:
        return "(unset)"
    return redact(yaml.safe_dump(v, default_flow_style=True, width=10**6).strip().removesuffix("...").strip())


def _params_file(obj) -> Path:
    from ..config import params_path

    return Path(obj.params_file) if obj is not None and obj.params_file is not None else params_path()


@click.group("profile")
def cli() -> None:
    """Switch params.yaml to a profile (e.g. the paper's full study): list, show, diff, apply."""


@cli.command("list")
def list_cmd() -> None:
    """The profiles in profiles/."""
    for name in available():
        prof = load_profile(name)
        click.echo(f"{name}: {prof.description.splitlines()[0] if prof.description else ''}")


@cli.command("show")
@click.argument("name")
def show(name: str) -> None:
    """A profile's description and the values it sets."""
    prof = load_profile(name)
    click.echo(f"# {prof.path}\n{prof.description}\n")
    for key, value in prof.values.items():
        click.echo(f"{key}: {_fmt(value)}")


@cli.command("diff")
@click.argument("name")
@click.pass_obj
def diff(obj, name: str) -> None:
    """What `fer-xai profile apply NAME` would change in params.yaml."""
    pfile = _params_file(obj)
    changes = plan(pfile, load_profile(name))
    if not changes:
        click.echo(f"{pfile}: already matches profile {name!r}")
    for ch in changes:
        click.echo(f"{ch.key}:\n  - {_fmt(ch.old)}\n  + {_fmt(ch.new)}")


@cli.command("apply")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Only print the changes (same as `fer-xai profile diff`).")
@click.pass_obj
def apply(obj, name: str, dry_run: bool) -> None:
    """Write profile NAME's values into params.yaml (comments kept, validated first)."""
    pfile = _params_file(obj)
    prof = load_profile(name)
    if dry_run:
        for ch in plan(pfile, prof):
            click.echo(f"{ch.key}: {_fmt(ch.old)} -> {_fmt(ch.new)}")
        return
    log.info("reading profile %s and %s", prof.path, pfile)
    changes = apply_profile(pfile, prof)
    for ch in changes:
        click.echo(f"{ch.key}: {_fmt(ch.old)} -> {_fmt(ch.new)}")
    click.echo(f"{pfile}: {len(changes)} value(s) changed by profile {name!r}"
               + ("" if changes else " (already applied)"))
    missing = missing_datasets(pfile)
    if missing:
        click.echo("datasets not added yet (add each before `dvc repro`): "
                   + "; ".join(f"fer-xai data add {m} /path/to/{m}" for m in missing))
