"""Pydantic models of the mask-spec file: its structure and types (the format: :mod:`fer_xai.masks.spec`).

Strict like ``params.yaml``'s models: unknown keys are errors and the models are frozen. What
the file refers to (named points, region names, AU numbers) is checked by ``load_spec``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    model_validator,
)

from ..faces.canonical import N_CONTROL, N_LANDMARKS
from ..labels import DISPLAY_NAMES, EXPRESSIONS

SHAPES = ("polygon", "triangles", "circle")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _in_range(lo: int, hi: int, what: str) -> AfterValidator:
    def check(n: int) -> int:
        if not lo <= n <= hi:
            raise ValueError(f"{what} {n} out of range {lo}..{hi}")
        return n
    return AfterValidator(check)


def _count(lo: int, hi: int | None, what: str) -> AfterValidator:
    """A length check that runs only once the items are valid (pydantic's ``min_length`` counts
    the valid items only, so one bad vertex would also report a too-short list)."""
    def check(items: Sized) -> Sized:
        if len(items) < lo or (hi is not None and len(items) > hi):
            raise ValueError(f"expected {what}, got {len(items)}")
        return items
    return AfterValidator(check)


def _empty_if_none(empty: Any) -> BeforeValidator:
    """An optional collection left empty in YAML (``points:``) reads as None: take it as empty."""
    return BeforeValidator(lambda v: empty if v is None else v)


# Strict: a quoted "3" or a true is a typo, not a number (ints are taken for floats).
Number = Annotated[float, Strict()]
PointNumber = Annotated[int, Strict(), _in_range(1, N_CONTROL, "point")]
Landmark = Annotated[int, Strict(), _in_range(1, N_LANDMARKS, "dlib landmark")]  # what an AU moves


# --------------------------------------------------------------------------- vertices

class XY(_Strict):
    """``{x_of: A, y_of: B}``: A's x and B's y."""

    x_of: Vertex
    y_of: Vertex


class LineAtX(_Strict):
    """``{line: [A, B], x_of: C}``: the point of line AB at C's x."""

    line: Pair
    x_of: Vertex


class LineAtY(_Strict):
    """``{line: [A, B], y_of: C}``: the point of line AB at C's y."""

    line: Pair
    y_of: Vertex


class Lerp(_Strict):
    """``{lerp: [A, B], t: T}``: A + T (B - A)."""

    lerp: Pair
    t: Number


class Offset(_Strict):
    """``{at: A, dx: X, dy: Y}``: A moved by canonical pixels."""

    at: Vertex
    dx: Number = 0.0
    dy: Number = 0.0


# The vertex forms by the keys they have, so that a bad vertex gets the errors of its own form
# only (pydantic would otherwise report why it fits none of the seven).
_FORM_OF_KEYS = {frozenset({"x_of", "y_of"}): "x_of+y_of", frozenset({"line", "x_of"}): "line+x_of",
                 frozenset({"line", "y_of"}): "line+y_of", frozenset({"lerp", "t"}): "lerp+t"}
_FORM_OF_MODEL = {XY: "x_of+y_of", LineAtX: "line+x_of", LineAtY: "line+y_of", Lerp: "lerp+t", Offset: "at+dx/dy"}


def vertex_form(v: Any) -> str:
    if isinstance(v, BaseModel):
        return _FORM_OF_MODEL.get(type(v), "invalid")
    if isinstance(v, bool):
        return "invalid"
    if isinstance(v, int):
        return "point"
    if isinstance(v, str):
        return "name"
    if isinstance(v, dict):
        keys = frozenset(v)
        if keys in _FORM_OF_KEYS:
            return _FORM_OF_KEYS[keys]
        if "at" in keys and keys <= {"at", "dx", "dy"}:
            return "at+dx/dy"
    return "invalid"


def _not_a_vertex(v: Any) -> Any:
    if isinstance(v, dict):
        raise ValueError(f"unknown vertex form with keys {sorted(map(str, v))} "
                         "(expected x_of/y_of, line+x_of, line+y_of, lerp+t or at+dx/dy)")
    raise ValueError(f"vertex {v!r} is not a point number, name or derivation")


Vertex = Annotated[
    Annotated[PointNumber, Tag("point")]
    | Annotated[Annotated[str, Strict()], Tag("name")]
    | Annotated[XY, Tag("x_of+y_of")]
    | Annotated[LineAtX, Tag("line+x_of")]
    | Annotated[LineAtY, Tag("line+y_of")]
    | Annotated[Lerp, Tag("lerp+t")]
    | Annotated[Offset, Tag("at+dx/dy")]
    | Annotated[Any, AfterValidator(_not_a_vertex), Tag("invalid")],  # pydantic wants the Tag last
    Discriminator(vertex_form),
]
Pair = Annotated[tuple[Vertex, ...], _count(2, 2, "two vertices")]
Triangle = Annotated[tuple[Vertex, ...], _count(3, 3, "three vertices")]
for _model in _FORM_OF_MODEL:
    _model.model_rebuild()


# --------------------------------------------------------------------------- regions, AUs, expressions

class Circle(_Strict):
    center: Vertex
    radius: Annotated[float, Strict(), Field(gt=0)]  # canonical pixels


class Region(_Strict):
    """One named shape: exactly one of ``polygon``, ``triangles`` (vertex triples), ``circle``."""

    polygon: Annotated[tuple[Vertex, ...], _count(3, None, "at least 3 vertices")] | None = None
    triangles: Annotated[tuple[Triangle, ...], _count(1, None, "at least one vertex triple")] | None = None
    circle: Circle | None = None
    note: str = ""

    @model_validator(mode="after")
    def _one_shape(self) -> Region:
        given = [k for k in SHAPES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"needs exactly one of {SHAPES}, has {given or 'none'}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in SHAPES if getattr(self, k) is not None)

    def vertices(self, where: str) -> Iterator[tuple[str, Vertex]]:
        """``(key path, vertex)`` of each vertex, the path starting at ``where`` (the region's)."""
        if self.polygon is not None:
            yield from ((f"{where}.polygon[{i}]", v) for i, v in enumerate(self.polygon))
        elif self.triangles is not None:
            for i, tri in enumerate(self.triangles):
                yield from ((f"{where}.triangles[{i}][{j}]", v) for j, v in enumerate(tri))
        else:
            yield f"{where}.circle.center", self.circle.center


def _au_number(key: Any) -> int:
    """``4``, ``"4"`` or ``"AU4"`` -> 4."""
    s = str(key).upper().removeprefix("AU")
    if isinstance(key, bool) or not s.isdigit():
        raise ValueError(f"{key!r} is not an action unit number")
    return int(s)


def _reason_given(reason: str) -> str:
    if not reason.strip():
        raise ValueError("give the reason the AU's region is not drawn")
    return reason


def _expression_name(key: str) -> str:
    """The display name (``"Anger"``) of an expression key, in any case."""
    display = {DISPLAY_NAMES[e].lower(): DISPLAY_NAMES[e] for e in EXPRESSIONS}
    if key.lower() not in display:
        raise ValueError(f"unknown expression {key!r} (expected one of {sorted(display.values())})")
    return display[key.lower()]


AuNumber = Annotated[int, BeforeValidator(_au_number)]
RegionNames = Annotated[tuple[str, ...], BeforeValidator(lambda v: (v,) if isinstance(v, str) else v)]
OmitReason = Annotated[str, _empty_if_none(""), AfterValidator(_reason_given)]
ExpressionName = Annotated[str, AfterValidator(_expression_name)]


class ActionUnit(_Strict):
    name: str
    muscles: str = ""
    landmarks: tuple[Landmark, ...] = ()
    regions: RegionNames
    note: str = ""


class Combination(_Strict):
    aus: tuple[AuNumber, ...]
    regions: RegionNames
    note: str = ""


class Expression(_Strict):
    aus: tuple[AuNumber, ...]
    regions: Annotated[dict[AuNumber, RegionNames], _empty_if_none({})] = {}  # per-AU override
    omit: Annotated[dict[AuNumber, OmitReason], _empty_if_none({})] = {}  # AU -> why it is not drawn
    differences: str = ""


class SpecFile(_Strict):
    """The spec file as written (structure and types; :func:`load_spec` adds the cross-references)."""

    spec: str | None = None
    version: Annotated[int, Strict()]
    template: str = "dlib_mean"
    numbering: str | None = None
    references: Annotated[dict[str, str], _empty_if_none({})] = {}
    points: Annotated[dict[str, Vertex], _empty_if_none({})] = {}
    regions: Annotated[dict[str, Region], _count(1, None, "at least one region")]
    aus: dict[AuNumber, ActionUnit]
    combinations: Annotated[tuple[Combination, ...], _empty_if_none(())] = ()
    expressions: dict[ExpressionName, Expression]
    notes: str | None = None
