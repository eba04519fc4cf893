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

Loading is two steps: the pydantic models of :mod:`fer_xai.masks.schema` check the file's
structure and types (unknown keys are errors, as in ``params.yaml``), then the cross-references
are checked here (named points and their cycles, region names, AU numbers, the six
expressions). Every problem is reported on its own line with the file and the key path that
holds it, e.g. ``spec.yaml: regions.tri.triangles[0][2]: point 99 out of range 1..89``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..config import read_yaml_mapping
from ..errors import FerXaiError
from ..labels import DISPLAY_NAMES, EXPRESSIONS
from .schema import SHAPES, ActionUnit, Combination, Expression, Region, SpecFile, Vertex, vertex_form

__all__ = ["SHAPES", "SPEC_FILE", "ActionUnit", "Combination", "Expression", "MaskSpec", "Region", "SpecError",
           "default_spec_path", "load_spec", "parse_vertex"]

SPEC_FILE = "ekman_masks.yaml"


class SpecError(FerXaiError, ValueError):
    """An invalid mask spec; the message names the file and the key."""


def default_spec_path() -> Path:
    return Path(str(resources.files("fer_xai") / "data" / SPEC_FILE))


@dataclass(frozen=True)
class MaskSpec:
    """A checked spec: every name it refers to is defined, AUs are numbers, expressions display names."""

    path: Path
    version: int
    template: str
    references: dict[str, str]
    points: dict[str, Vertex]
    regions: dict[str, Region]
    aus: dict[int, ActionUnit]
    combinations: tuple[Combination, ...]
    expressions: dict[str, Expression]  # display name ("Anger") -> definition, in file order

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


# --------------------------------------------------------------------------- loading

_VERTEX = TypeAdapter(Vertex)


def parse_vertex(v: Any) -> Vertex:
    """A vertex as written in a spec (``37``, ``"mid"``, ``{"lerp": [37, 46], "t": 0.5}``), checked."""
    try:
        return _VERTEX.validate_python(v)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _key_path(err["loc"], v)  # inside the vertex: "lerp[1].dx", or "" for the vertex itself
        raise SpecError(f"vertex {v!r}: {where + ': ' if where else ''}{_message(err)}") from exc


def load_spec(path: str | os.PathLike | None = None) -> MaskSpec:
    """Read and validate a mask spec (default: the packaged one)."""
    p = Path(path) if path is not None else default_spec_path()
    raw = read_yaml_mapping(p, "mask spec", SpecError)
    try:
        doc = SpecFile.model_validate(raw)
    except ValidationError as exc:
        raise _spec_error(p, ((_key_path(e["loc"], raw) or "top level", _message(e)) for e in exc.errors())) from exc
    problems = list(_reference_problems(doc))
    if problems:
        raise _spec_error(p, problems)
    return MaskSpec(path=p, version=doc.version, template=doc.template, references=doc.references,
                    points=doc.points, regions=doc.regions, aus=doc.aus, combinations=doc.combinations,
                    expressions=doc.expressions)


def _spec_error(path: Path, problems: Iterable[tuple[str, str]]) -> SpecError:
    return SpecError("\n".join(f"{path}: {where}: {msg}" for where, msg in problems))


# Pydantic's wording where a spec's author would not recognise it (YAML has lists and keys).
_MESSAGES = {"extra_forbidden": "unknown key", "tuple_type": "Input should be a list"}


def _message(err: dict) -> str:
    return _MESSAGES.get(err["type"], err["msg"].removeprefix("Value error, "))


def _key_path(loc: tuple, raw: Any) -> str:
    """Pydantic's error location as written in the file: ``regions.tri.triangles[0][2]``.

    Walks the raw document to tell list indexes from (integer) mapping keys, and drops what is
    not in the file: pydantic's ``[key]`` marker and the vertex form the discriminator chose.
    """
    out, node = "", raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            out, node = f"{out}.{part}", node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out, node = f"{out}[{part}]", node[part]
        elif part == "[key]" or part == vertex_form(node):
            continue
        else:  # a missing key, or an index into a value converted on the way (a single region name)
            out, node = out + (f"[{part}]" if isinstance(part, int) else f".{part}"), None
    return out.lstrip(".")


def _named_points(v: Vertex, where: str) -> Iterator[tuple[str, str]]:
    """``(key path, name)`` of each named point in vertex ``v`` (``v`` itself when it is a name)."""
    if isinstance(v, str):
        yield where, v
    elif isinstance(v, BaseModel):
        for key, value in v:
            if isinstance(value, tuple):
                for i, u in enumerate(value):
                    yield from _named_points(u, f"{where}.{key}[{i}]")
            else:
                yield from _named_points(value, f"{where}.{key}")


def _cycle(start: str, refs: dict[str, list[str]]) -> list[str] | None:
    """A chain of named points from ``start`` back to itself, if there is one."""
    stack, seen = [[start]], {start}
    while stack:
        trail = stack.pop()
        for n in refs.get(trail[-1], ()):
            if n == start:
                return [*trail, n]
            if n in refs and n not in seen:
                seen.add(n)
                stack.append([*trail, n])
    return None


def _point_problems(doc: SpecFile) -> Iterator[tuple[str, str]]:
    named = [(w, n) for name, v in doc.points.items() for w, n in _named_points(v, f"points.{name}")]
    for name, region in doc.regions.items():
        named += [(w, n) for where, v in region.vertices(f"regions.{name}") for w, n in _named_points(v, where)]
    for where, n in named:
        if n not in doc.points:
            yield where, f"unknown named point {n!r} (define it under 'points')"
    refs = {name: [n for _, n in _named_points(v, "")] for name, v in doc.points.items()}
    for name in doc.points:
        cycle = _cycle(name, refs)
        if cycle:
            yield f"points.{name}", f"refers to itself ({' -> '.join(cycle)})"


def _au_problems(aus: tuple[int, ...], where: str, doc: SpecFile) -> Iterator[tuple[str, str]]:
    for i, a in enumerate(aus):
        if a not in doc.aus:
            yield f"{where}[{i}]", f"AU{a} is not defined under 'aus'"


def _region_problems(names: tuple[str, ...], where: str, doc: SpecFile) -> Iterator[tuple[str, str]]:
    for i, n in enumerate(names):
        if n not in doc.regions:
            yield f"{where}[{i}]", f"unknown region {n!r}"


def _reference_problems(doc: SpecFile) -> Iterator[tuple[str, str]]:
    """What the file refers to but does not define, each with its key path."""
    yield from _point_problems(doc)
    for n, au in doc.aus.items():
        yield from _region_problems(au.regions, f"aus.{n}.regions", doc)
    for i, c in enumerate(doc.combinations):
        yield from _au_problems(c.aus, f"combinations[{i}].aus", doc)
        yield from _region_problems(c.regions, f"combinations[{i}].regions", doc)
    for name, ex in doc.expressions.items():
        where = f"expressions.{name}"
        yield from _au_problems(ex.aus, f"{where}.aus", doc)
        for section, per_au in (("regions", ex.regions), ("omit", ex.omit)):
            for a in per_au:
                if a not in ex.aus:
                    yield f"{where}.{section}.{a}", f"AU{a} is not one of the expression's AUs {list(ex.aus)}"
        for a, names in ex.regions.items():
            yield from _region_problems(names, f"{where}.regions.{a}", doc)
    missing = [DISPLAY_NAMES[x] for x in EXPRESSIONS if DISPLAY_NAMES[x] not in doc.expressions]
    if missing:
        yield "expressions", f"missing {missing}"
