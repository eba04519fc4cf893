"""Ekman masks from the AU-region spec: Table 2, published-mask IoU, spec validation, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from fer_xai.faces.canonical import canonical_space
from fer_xai.labels import DISPLAY_NAMES, EXPRESSION_AUS
from fer_xai.masks import SpecError, expression_masks, iou, load_spec
from fer_xai.masks.build import draw_region, resolve_vertex

# ../shared/reference relative to the repository root (contracts: never copied into the repo).
REFERENCE_MASKS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "ekman_masks"


@pytest.fixture(scope="module")
def space():
    return canonical_space()


@pytest.fixture(scope="module")
def spec():
    return load_spec()


def reference_mask(name: str) -> np.ndarray:
    path = REFERENCE_MASKS / f"{name}_gt.png"
    if not path.is_file():
        pytest.skip(f"published Ekman masks not found at {REFERENCE_MASKS} (../shared/reference absent)")
    return np.asarray(Image.open(path))[..., 0] > 127


def test_spec_follows_table_2(spec):
    assert spec.version >= 1 and spec.references
    for expr, aus in EXPRESSION_AUS.items():
        ex = spec.expressions[DISPLAY_NAMES[expr]]
        assert ex.aus == aus, f"{expr}: spec AUs {ex.aus} differ from Table 2 {aus}"
        for au, reason in ex.omit.items():
            assert len(reason) > 40, f"{expr}: omitted AU{au} needs its reason"
    for n, au in spec.aus.items():
        assert au.name and au.muscles and au.regions and au.landmarks, f"AU{n} incomplete"


@pytest.mark.parametrize("expr", [DISPLAY_NAMES[e] for e in EXPRESSION_AUS])
def test_masks_match_the_published_ones(space, spec, expr):
    ref = reference_mask(expr)
    ours = expression_masks(expr, space, spec).mask
    score = iou(ours, ref)
    assert score >= 0.90, f"{expr}: IoU {score:.4f} with the published mask"
    if score < 0.999:
        assert len(spec.expressions[expr].differences) > 40, f"{expr}: explain the remaining difference"


def test_expression_mask_is_the_union_of_its_parts(space, spec):
    em = expression_masks("Fear", space, spec)
    assert set(em.per_au) == {1, 2, 4, 5, 7, 20}  # AU26 omitted, with its reason
    assert set(em.combinations) == {"AU1+AU4"}
    union = np.zeros(space.shape, bool)
    for m in (*em.per_au.values(), *em.combinations.values()):
        union |= m
    assert np.array_equal(union, em.mask)


def write_spec(tmp_path, doc) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def minimal_doc() -> dict:
    exprs = {DISPLAY_NAMES[e]: {"aus": [1]} for e in EXPRESSION_AUS}
    return {
        "version": 1,
        "points": {"mid": {"lerp": [37, 46], "t": 0.5}},
        "regions": {
            "tri": {"triangles": [[37, 40, {"x_of": 37, "y_of": 30}]]},
            "disc": {"circle": {"center": "mid", "radius": 10}},
            "box": {"polygon": [{"at": 34, "dx": -5, "dy": -5}, {"at": 34, "dx": 5, "dy": -5},
                                {"at": 34, "dx": 5, "dy": 5}, {"at": 34, "dx": -5, "dy": 5}]},
            "band": {"polygon": [37, 46, {"line": [46, 17], "y_of": 30}, {"line": [37, 1], "y_of": 30}]},
        },
        "aus": {1: {"name": "test", "regions": ["tri", "disc", "box"]}},
        "expressions": exprs,
    }


def test_vertex_forms_and_shapes(tmp_path, space):
    spec = load_spec(write_spec(tmp_path, minimal_doc()))
    mid = resolve_vertex("mid", space, spec)
    assert np.allclose(mid, (space.point(37) + space.point(46)) / 2)
    p = resolve_vertex({"line": [37, 1], "y_of": 30}, space, spec)
    a, b = space.point(37), space.point(1)
    assert p[1] == space.point(30)[1] and np.isclose((p - a)[0] * (b - a)[1], (p - a)[1] * (b - a)[0])
    disc = draw_region(spec.regions["disc"], space, spec)
    assert abs(disc.sum() - np.pi * 100) < 0.06 * np.pi * 100
    assert disc[int(round(mid[1])), int(round(mid[0]))]
    box = draw_region(spec.regions["box"], space, spec)
    assert box.sum() == 121  # 11 x 11 pixel centres
    tri = draw_region(spec.regions["tri"], space, spec)
    x37, x40 = space.point(37)[0], space.point(40)[0]
    h = space.point(30)[1] - space.point(37)[1]
    assert abs(tri.sum() - 0.5 * (x40 - x37) * h) < 0.15 * 0.5 * (x40 - x37) * h


@pytest.mark.parametrize("mutate, where, problem", [
    (lambda d: d["regions"]["tri"].update(triangles=[[37, 40, 99]]), "regions.tri.triangles[0][2]",
     "point 99 out of range 1..89"),
    (lambda d: d["regions"]["box"]["polygon"].append("nowhere"), "regions.box.polygon[4]", "unknown named point"),
    (lambda d: d["aus"][1].update(regions=["missing"]), "aus.1.regions[0]", "unknown region 'missing'"),
    (lambda d: d["expressions"].pop("Fear"), "expressions", "missing ['Fear']"),
    (lambda d: d["expressions"]["Anger"].update(omit={4: "x"}), "expressions.Anger.omit.4",
     "not one of the expression's AUs"),
    (lambda d: d["expressions"]["Anger"].update(aus=[1], omit={1: " "}), "expressions.Anger.omit.1", "reason"),
    (lambda d: d["regions"].update(bad={"polygon": [1, 2]}), "regions.bad.polygon", "at least 3 vertices"),
    (lambda d: d["regions"].update(bad={"circle": {"center": 1, "radius": -1}}), "regions.bad.circle.radius",
     "greater than 0"),
    (lambda d: d["regions"].update(bad={"polygon": [1, 2, 3], "circle": {"center": 1, "radius": 1}}),
     "regions.bad", "exactly one of"),
    # unknown keys, at the top and inside a section
    (lambda d: d.update(colour="red"), "colour", "unknown key"),
    (lambda d: d["aus"][1].update(colour="red"), "aus.1.colour", "unknown key"),
    (lambda d: d["aus"][1].pop("name"), "aus.1.name", "required"),
    # wrong types: a quoted number is not a number, a bare word not a list
    (lambda d: d["regions"]["disc"]["circle"].update(radius="10"), "regions.disc.circle.radius", "valid number"),
    (lambda d: d["points"]["mid"].update(t="half"), "points.mid.t", "valid number"),
    (lambda d: d["aus"][1].update(landmarks="37"), "aus.1.landmarks", "list"),
    (lambda d: d.update(version="1"), "version", "valid integer"),
    (lambda d: d["points"].update(mid={"lerp": [37, 46], "s": 0.5}), "points.mid", "unknown vertex form"),
    # landmarks out of range: a region's vertex (deep in a derivation) and the landmarks an AU moves
    (lambda d: d["regions"]["band"]["polygon"].append({"line": [46, 90], "y_of": 30}),
     "regions.band.polygon[4].line[1]", "point 90 out of range 1..89"),
    (lambda d: d["aus"][1].update(landmarks=[37, 70]), "aus.1.landmarks[1]", "dlib landmark 70 out of range 1..68"),
    # AUs and expressions the spec does not define
    (lambda d: d["expressions"]["Anger"].update(aus=[1, "AU9"]), "expressions.Anger.aus[1]",
     "AU9 is not defined under 'aus'"),
    (lambda d: d.update(combinations=[{"aus": [1, 2], "regions": ["tri"]}]), "combinations[0].aus[1]",
     "AU2 is not defined"),
    (lambda d: d["aus"].update(AUx={"name": "x", "regions": ["tri"]}), "aus.AUx", "not an action unit number"),
    (lambda d: d["expressions"].update(Joy={"aus": [1]}), "expressions.Joy", "unknown expression"),
    (lambda d: d["points"].update(mid={"at": "mid2"}, mid2={"lerp": ["mid", 46], "t": 0.5}), "points.mid",
     "refers to itself (mid -> mid2 -> mid)"),
])
def test_spec_errors_name_file_and_key(tmp_path, mutate, where, problem):
    doc = minimal_doc()
    mutate(doc)
    path = write_spec(tmp_path, doc)
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    lines = str(exc.value).splitlines()
    assert any(line.startswith(f"{path}: {where}: ") and problem in line for line in lines), str(exc.value)


def test_spec_errors_list_every_problem_and_are_domain_errors(tmp_path):
    from fer_xai.errors import FerXaiError

    doc = minimal_doc()
    doc["regions"]["tri"]["triangles"] = [[37, 40, 99]]
    doc["aus"][1]["colour"] = "red"
    path = write_spec(tmp_path, doc)
    with pytest.raises(FerXaiError) as exc:
        load_spec(path)
    assert str(exc.value).splitlines() == [f"{path}: regions.tri.triangles[0][2]: point 99 out of range 1..89",
                                           f"{path}: aus.1.colour: unknown key"]
    assert isinstance(exc.value, SpecError) and isinstance(exc.value, ValueError)


def test_empty_optional_sections_and_au_keys(tmp_path, space):
    doc = minimal_doc()
    doc["regions"]["disc"]["circle"]["center"] = 34
    doc.update(points=None, combinations=None)
    doc["aus"] = {"AU1": doc["aus"][1]}
    doc["expressions"]["Anger"].update(regions=None, omit=None)
    spec = load_spec(write_spec(tmp_path, doc))
    assert spec.points == {} and spec.combinations == () and set(spec.aus) == {1}
    assert spec.expressions["Anger"].regions == {} and spec.au_regions("Anger", 1) == ("tri", "disc", "box")
    with pytest.raises(SpecError, match=r"vertex \{'at': 34, 'dx': 'x'\}: dx: Input should be a valid number"):
        resolve_vertex({"at": 34, "dx": "x"}, space, spec)


def test_masks_cli_writes_the_published_format(project):
    from fer_xai.cli import main
    from fer_xai.compare.published import find_masks, read_map

    out = project / "masks_out"
    args = ["masks", "--out", str(out)]
    if REFERENCE_MASKS.is_dir():
        args += ["--reference", str(REFERENCE_MASKS)]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for e in EXPRESSION_AUS:
        name = DISPLAY_NAMES[e]
        arr = np.asarray(Image.open(out / f"{name}_gt.png"))
        assert arr.shape == (275, 224, 3) and arr.dtype == np.uint8
        assert set(np.unique(arr)) <= {0, 255} and (arr[..., 0] == arr[..., 2]).all()
        for au in EXPRESSION_AUS[e]:
            if not (name == "Fear" and au == 26):
                assert (out / "au" / name / f"AU{au}.png").is_file()
    assert {p.stem for p in (out / "au").glob("AU*.png")} == {f"AU{a}" for a in load_spec().aus}
    assert (out / "overview.png").is_file() and (out / "masks.json").is_file()
    masks = {e: read_map(p, "mask") for e, p in find_masks(out, ["Anger", "Fear"]).items()}
    assert masks["Anger"].shape == (275, 224)
    if REFERENCE_MASKS.is_dir():
        assert "IoU" in res.output


def test_masks_cli_reports_a_bad_spec(project, tmp_path):
    from fer_xai.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nregions: {}\naus: {}\nexpressions: {}\n")
    res = CliRunner().invoke(main, ["masks", "--out", str(project / "m"), "--spec", str(bad)])
    assert res.exit_code != 0 and str(bad) in res.output and "regions" in res.output
    assert not (project / "m").exists()
