"""The Ekman-mask spec: expressions -> action units -> face regions on landmark numbers.

The spec is a YAML file (packaged: ``fer_xai/data/ekman_masks.yaml``) with

* ``points``: named derived points,
* ``regions``: named shapes (``polygon``, ``triangles`` or ``circle``),
* ``aus``: each action unit's name, muscles, the landmarks it moves and its default regions,
* ``combinations``: regions drawn when an expression has all of some AUs (paper 4.4: "the
  relationship between AUs is evaluated to merge related regions"),
* ``expressions``: each expression's AUs (paper Table 2), per-AU region overrides, AUs whose
  region the published mask does not draw (``omit``, with the reason) and the remaining
  differences from the published masks.

Vertices refer to the 89 control points by their 1-based numbers (1-68 the dlib landmarks,
69-85 the jaw points 1-17 copied to the top edge, 86-89 the corners: top-left, bottom-left,
top-right, bottom-right), to named points, or derive a point from others:

* ``{x_of: A, y_of: B}``: A's x and B's y,
* ``{line: [A, B], x_of: C}`` / ``{line: [A, B], y_of: C}``: the point of line AB at C's x (or y),
* ``{lerp: [A, B], t: 0.25}``: A + t (B - A),
* ``{at: A, dx: 3, dy: -2}``: A moved by canonical pixels.

Every problem is reported with the file and the key path that holds it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..config import read_yaml_mapping
from ..faces.canonical import N_CONTROL
from ..labels import DISPLAY_NAMES, EXPRESSIONS

SPEC_FILE = "ekman_masks.yaml"
SHAPES = ("polygon", "triangles", "circle")


class SpecError(ValueError):
    """An invalid mask spec; the message names the file and the key."""


def default_spec_path() -> Path:
    return Path(str(resources.files("fer_xai") / "data" / SPEC_FILE))


@dataclass(frozen=True)
class Region:
    name: str
    kind: str  # polygon | triangles | circle
    data: Any
    note: str = ""


@dataclass(frozen=True)
class ActionUnit:
    number: int
    name: str
    muscles: str
    landmarks: tuple[int, ...]
    regions: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Combination:
    aus: tuple[int, ...]
    regions: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Expression:
    name: str  # display name, e.g. "Anger"
    aus: tuple[int, ...]
    regions: dict[int, tuple[str, ...]]  # per-AU override
    omit: dict[int, str]
    differences: str = ""


@dataclass(frozen=True)
class MaskSpec:
    path: Path
    version: int
    template: str
    references: dict[str, str]
    points: dict[str, Any]
    regions: dict[str, Region]
    aus: dict[int, ActionUnit]
    combinations: tuple[Combination, ...]
    expressions: dict[str, Expression] = field(default_factory=dict)

    def au_regions(self, expression: str, au: int) -> tuple[str, ...]:
        """The regions AU ``au`` draws in ``expression`` (an override or the AU's default)."""
        ex = self.expressions[expression]
        if au in ex.omit:
            return ()
        return ex.regions.get(au, self.aus[au].regions)

    def combination_regions(self, expression: str) -> list[tuple[Combination, tuple[str, ...]]]:
        ex = self.expressions[expression]
        drawn = set(ex.aus) - set(ex.omit)
        return [(c, c.regions) for c in self.combinations if set(c.aus) <= drawn]


def _err(path: Path, where: str, msg: str) -> SpecError:
    return SpecError(f"{path}: {where}: {msg}")


def _check_vertex(v: Any, path: Path, where: str, points: dict[str, Any]) -> None:
    if isinstance(v, bool):
        raise _err(path, where, f"vertex {v!r} is not a point number, name or derivation")
    if isinstance(v, int):
        if not 1 <= v <= N_CONTROL:
            raise _err(path, where, f"point {v} out of range 1..{N_CONTROL}")
        return
    if isinstance(v, str):
        if v not in points:
            raise _err(path, where, f"unknown named point {v!r} (define it under 'points')")
        return
    if not isinstance(v, dict):
        raise _err(path, where, f"vertex {v!r} is not a point number, name or derivation")
    keys = set(v)
    if keys == {"x_of", "y_of"}:
        _check_vertex(v["x_of"], path, where + ".x_of", points)
        _check_vertex(v["y_of"], path, where + ".y_of", points)
    elif "line" in keys and keys in ({"line", "x_of"}, {"line", "y_of"}):
        on = v["line"]
        if not isinstance(on, list) or len(on) != 2:
            raise _err(path, where + ".line", "expected a list of two vertices")
        for i, u in enumerate(on):
            _check_vertex(u, path, f"{where}.line[{i}]", points)
        other = "x_of" if "x_of" in keys else "y_of"
        _check_vertex(v[other], path, f"{where}.{other}", points)
    elif keys == {"lerp", "t"}:
        ab = v["lerp"]
        if not isinstance(ab, list) or len(ab) != 2:
            raise _err(path, where + ".lerp", "expected a list of two vertices")
        for i, u in enumerate(ab):
            _check_vertex(u, path, f"{where}.lerp[{i}]", points)
        if not isinstance(v["t"], (int, float)):
            raise _err(path, where + ".t", "expected a number")
    elif "at" in keys and keys <= {"at", "dx", "dy"}:
        _check_vertex(v["at"], path, where + ".at", points)
        for k in ("dx", "dy"):
            if k in v and not isinstance(v[k], (int, float)):
                raise _err(path, f"{where}.{k}", "expected a number of canonical pixels")
    else:
        raise _err(path, where, f"unknown vertex form with keys {sorted(map(str, keys))} "
                   "(expected x_of/y_of, line+x_of, line+y_of, lerp+t or at+dx/dy)")


def _au_number(key: Any, path: Path, where: str) -> int:
    s = str(key).upper().removeprefix("AU")
    if not s.isdigit():
        raise _err(path, where, f"{key!r} is not an action unit number")
    return int(s)


def load_spec(path: str | os.PathLike | None = None) -> MaskSpec:
    """Read and validate a mask spec (default: the packaged one)."""
    p = Path(path) if path is not None else default_spec_path()
    raw = read_yaml_mapping(p, "mask spec", SpecError)
    for key in ("version", "regions", "aus", "expressions"):
        if key not in raw:
            raise _err(p, key, "missing")
    known = {"spec", "version", "template", "numbering", "references", "points", "regions", "aus",
             "combinations", "expressions", "notes"}
    unknown = set(raw) - known
    if unknown:
        raise _err(p, ",".join(sorted(unknown)), f"unknown top-level key(s); expected {sorted(known)}")

    points = raw.get("points") or {}
    if not isinstance(points, dict):
        raise _err(p, "points", "expected a mapping name -> vertex")
    for name, v in points.items():
        _check_vertex(v, p, f"points.{name}", {k: None for k in points if k != name})

    regions: dict[str, Region] = {}
    if not isinstance(raw["regions"], dict) or not raw["regions"]:
        raise _err(p, "regions", "expected a non-empty mapping")
    for name, r in raw["regions"].items():
        where = f"regions.{name}"
        if not isinstance(r, dict):
            raise _err(p, where, "expected a mapping")
        kinds = [k for k in SHAPES if k in r]
        if len(kinds) != 1:
            raise _err(p, where, f"needs exactly one of {SHAPES}")
        extra = set(r) - {kinds[0], "note"}
        if extra:
            raise _err(p, where, f"unknown key(s) {sorted(extra)}")
        kind, data = kinds[0], r[kinds[0]]
        if kind == "polygon":
            if not isinstance(data, list) or len(data) < 3:
                raise _err(p, where + ".polygon", "expected a list of at least 3 vertices")
            for i, v in enumerate(data):
                _check_vertex(v, p, f"{where}.polygon[{i}]", points)
        elif kind == "triangles":
            if not isinstance(data, list) or not data:
                raise _err(p, where + ".triangles", "expected a list of [a, b, c] vertex triples")
            for i, t in enumerate(data):
                if not isinstance(t, list) or len(t) != 3:
                    raise _err(p, f"{where}.triangles[{i}]", "expected three vertices")
                for j, v in enumerate(t):
                    _check_vertex(v, p, f"{where}.triangles[{i}][{j}]", points)
        else:
            if not isinstance(data, dict) or set(data) != {"center", "radius"}:
                raise _err(p, where + ".circle", "expected {center: vertex, radius: canonical px}")
            _check_vertex(data["center"], p, where + ".circle.center", points)
            if not isinstance(data["radius"], (int, float)) or data["radius"] <= 0:
                raise _err(p, where + ".circle.radius", "expected a positive number of canonical pixels")
        regions[name] = Region(name, kind, data, str(r.get("note", "")))

    def region_list(value: Any, where: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise _err(p, where, "expected a list of region names")
        for n in value:
            if n not in regions:
                raise _err(p, where, f"unknown region {n!r}")
        return tuple(value)

    aus: dict[int, ActionUnit] = {}
    if not isinstance(raw["aus"], dict):
        raise _err(p, "aus", "expected a mapping AU number -> definition")
    for key, a in raw["aus"].items():
        n = _au_number(key, p, f"aus.{key}")
        where = f"aus.{key}"
        if not isinstance(a, dict) or "regions" not in a or "name" not in a:
            raise _err(p, where, "needs at least 'name' and 'regions'")
        lms = a.get("landmarks", [])
        if not isinstance(lms, list) or any(not isinstance(i, int) or not 1 <= i <= 68 for i in lms):
            raise _err(p, where + ".landmarks", "expected dlib landmark numbers 1..68")
        aus[n] = ActionUnit(n, str(a["name"]), str(a.get("muscles", "")), tuple(lms),
                            region_list(a["regions"], where + ".regions"), str(a.get("note", "")))

    combos = []
    for i, c in enumerate(raw.get("combinations") or []):
        where = f"combinations[{i}]"
        if not isinstance(c, dict) or "aus" not in c or "regions" not in c:
            raise _err(p, where, "needs 'aus' and 'regions'")
        caus = tuple(_au_number(a, p, where + ".aus") for a in c["aus"])
        for a in caus:
            if a not in aus:
                raise _err(p, where + ".aus", f"AU{a} is not defined under 'aus'")
        combos.append(Combination(caus, region_list(c["regions"], where + ".regions"), str(c.get("note", ""))))

    expressions: dict[str, Expression] = {}
    if not isinstance(raw["expressions"], dict):
        raise _err(p, "expressions", "expected a mapping expression -> definition")
    display = {v.lower(): v for k, v in DISPLAY_NAMES.items() if k in EXPRESSIONS}
    for key, e in raw["expressions"].items():
        where = f"expressions.{key}"
        name = display.get(str(key).lower())
        if name is None:
            raise _err(p, where, f"unknown expression (expected one of {sorted(display.values())})")
        if not isinstance(e, dict) or "aus" not in e:
            raise _err(p, where, "needs 'aus'")
        eaus = tuple(_au_number(a, p, where + ".aus") for a in e["aus"])
        for a in eaus:
            if a not in aus:
                raise _err(p, where + ".aus", f"AU{a} is not defined under 'aus'")
        overrides = {}
        for k, v in (e.get("regions") or {}).items():
            a = _au_number(k, p, f"{where}.regions.{k}")
            if a not in eaus:
                raise _err(p, f"{where}.regions.{k}", f"AU{a} is not one of the expression's AUs {list(eaus)}")
            overrides[a] = region_list(v, f"{where}.regions.{k}")
        omit = {}
        for k, v in (e.get("omit") or {}).items():
            a = _au_number(k, p, f"{where}.omit.{k}")
            if a not in eaus:
                raise _err(p, f"{where}.omit.{k}", f"AU{a} is not one of the expression's AUs {list(eaus)}")
            if not str(v or "").strip():
                raise _err(p, f"{where}.omit.{k}", "give the reason the AU's region is not drawn")
            omit[a] = str(v)
        expressions[name] = Expression(name, eaus, overrides, omit, str(e.get("differences", "")))
    missing = [DISPLAY_NAMES[x] for x in EXPRESSIONS if DISPLAY_NAMES[x] not in expressions]
    if missing:
        raise _err(p, "expressions", f"missing {missing}")
    version = raw["version"]
    if not isinstance(version, int):
        raise _err(p, "version", "expected an integer")
    return MaskSpec(
        path=p, version=version, template=str(raw.get("template", "dlib_mean")),
        references={str(k): str(v) for k, v in (raw.get("references") or {}).items()},
        points=points, regions=regions, aus=aus, combinations=tuple(combos), expressions=expressions,
    )
