"""``fer-xai masks``: the six Ekman masks and per-AU region masks in canonical face space.

Built from the AU-region spec (``masks.spec``, default the packaged
``fer_xai/data/ekman_masks.yaml``) on the canonical template (``canonical``). Writes, under
``--out`` (default ``masks.out_dir``):

* ``<Expression>_gt.png``: the published format (275 x 224, three identical channels, 0/255),
  so ``fer-xai compare --masks-dir`` reads these or the published ones alike;
* ``au/AU<n>.png``: each action unit's default region; ``au/<Expression>/AU<n>.png`` the AU's
  region as drawn in that expression, ``au/<Expression>/AU<a>+AU<b>.png`` merge regions;
* ``masks.json``: spec version and checksum, template, AUs and area per expression (and the
  IoU against ``--reference`` masks when given); ``overview.png``: the masks over the template
  with the point numbers.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import click
import numpy as np

from .. import layout
from ..config import Params
from ..faces.canonical import CanonicalSpace, for_study
from ..images import write_png
from ..masks import au_masks, expression_masks, iou, load_spec, to_published
from ..masks.spec import MaskSpec
from ..outputs import staged_dir
from ..paths import resolve, write_json_atomic

log = logging.getLogger(__name__)


def read_reference(reference: Path, expressions) -> dict[str, np.ndarray]:
    from ..compare.published import find_masks, read_map

    paths = find_masks(reference, list(expressions))
    return {e: read_map(p, "mask") > 127 for e, p in paths.items()}


def build_all(space: CanonicalSpace, spec: MaskSpec) -> tuple[dict, dict, dict]:
    """``(expression masks, per-expression details, AU default masks)``."""
    exprs, details = {}, {}
    for name in spec.expressions:
        em = expression_masks(name, space, spec)
        exprs[name] = em.mask
        details[name] = em
    return exprs, details, au_masks(space, spec)


def write_masks(out: Path, space: CanonicalSpace, spec: MaskSpec, reference: dict | None = None,
                overview: bool = True) -> dict:
    exprs, details, aus = build_all(space, spec)
    summary: dict = {
        "spec": str(spec.path.name), "spec_version": spec.version,
        "spec_sha256": hashlib.sha256(spec.path.read_bytes()).hexdigest(),
        "template": space.source, "shape": [space.height, space.width],
        "expressions": {}, "aus": {},
    }
    for name, mask in exprs.items():
        write_png(out / layout.expression_mask_name(name), to_published(mask))
        ex = spec.expressions[name]
        entry = {
            "aus": list(ex.aus), "drawn_aus": [a for a in ex.aus if a not in ex.omit],
            "omitted_aus": {str(a): r for a, r in ex.omit.items()},
            "merges": list(details[name].combinations), "area_fraction": round(float(mask.mean()), 5),
        }
        if reference is not None:
            entry["iou_vs_reference"] = round(iou(mask, reference[name]), 4)
        summary["expressions"][name] = entry
        for a, m in details[name].per_au.items():
            write_png(out / layout.AU_DIR / name / layout.au_mask_name(a), to_published(m))
        for combo, m in details[name].combinations.items():
            write_png(out / layout.AU_DIR / name / layout.merge_mask_name(combo), to_published(m))
    for a, m in aus.items():
        write_png(out / layout.AU_DIR / layout.au_mask_name(a), to_published(m))
        summary["aus"][f"AU{a}"] = {"name": spec.aus[a].name, "muscles": spec.aus[a].muscles,
                                    "area_fraction": round(float(m.mean()), 5)}
    if overview:
        from ..masks.figure import overview as draw

        draw(space, exprs, out / layout.MASKS_OVERVIEW, reference)
        draw(space, {f"AU{a} {spec.aus[a].name}": m for a, m in aus.items()},
             out / layout.AU_DIR / layout.MASKS_OVERVIEW, ncols=5)
    write_json_atomic(out / layout.MASKS_SUMMARY, summary)
    return summary


def run(params: Params, out_dir: str | Path | None = None, spec_path: str | Path | None = None,
        reference: str | Path | None = None) -> dict:
    out = layout.masks_dir(params) if out_dir is None else resolve(out_dir)
    guard = params.output_guard("masks", "masks.out_dir" if out_dir is None else "--out")
    guard.check(out)
    spec_file = spec_path if spec_path is not None else params.masks.spec
    spec = load_spec(resolve(spec_file) if spec_file else None)
    space = for_study(params)
    if spec.template != space.source:
        log.warning("spec %s was written for the %s template, building on %s", spec.path.name, spec.template,
                    space.source)
    ref = read_reference(Path(reference), spec.expressions) if reference is not None else None
    log.info("building %d Ekman masks and %d AU masks from %s (version %d) on the %s template",
             len(spec.expressions), len(spec.aus), spec.path, spec.version, space.source)
    with staged_dir(out, guard) as tmp:
        summary = write_masks(tmp, space, spec, ref, params.masks.overview)
    for name, e in summary["expressions"].items():
        extra = f", IoU vs reference {e['iou_vs_reference']:.4f}" if "iou_vs_reference" in e else ""
        log.info("%s: AUs %s, %.1f%% of the face%s", name, e["drawn_aus"], 100 * e["area_fraction"], extra)
    log.info("wrote %s", out)
    return summary


@click.command("masks")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: masks.out_dir).")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="AU-region spec YAML (default: masks.spec, else the packaged spec).")
@click.option("--reference", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of published <Expression>_gt.png masks to report the IoU against.")
@click.pass_obj
def cli(obj, out_dir: Path | None, spec_path: Path | None, reference: Path | None) -> None:
    """Build the Ekman masks (<Expression>_gt.png) and per-AU region masks in canonical space."""
    summary = run(obj.params, out_dir, spec_path, reference)
    for name, e in summary["expressions"].items():
        iou_txt = f"  IoU {e['iou_vs_reference']:.4f}" if "iou_vs_reference" in e else ""
        click.echo(f"{name:<10} AUs {','.join(map(str, e['drawn_aus'])):<16} area {e['area_fraction']:.3f}{iou_txt}")
