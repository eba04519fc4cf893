"""The report's section "Does the answer depend on the explainer?", from ``fer-xai bench``'s folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import layout
from ..labels import DISPLAY_NAMES
from .blocks import Section, read_csv, rel_path, table_block, text_block
from .figures import Figures

HEADLINE = {  # methods.csv column -> shown as
    "method": "method", "planted_precision": "planted precision", "planted_iou": "planted IoU",
    "drop_otsu": "drop: own region", "drop_planted": "drop: AU region", "drop_random": "drop: random region",
    "deletion_auc": "deletion AUC (lower: better)", "insertion_auc": "insertion AUC (higher: better)",
    "sanity_spearman": "Spearman vs randomised", "sanity_pass": "sanity", "specific_expressions": "specific (of 6)",
    "kendall_tau": "Kendall tau vs LIME", "dendrogram_correlation": "dendrograms vs LIME",
    "seconds_per_image": "s / image",
}
PER_EXPRESSION = {
    "method": "method", "expression": "expression", "planted_precision": "planted precision",
    "planted_recall": "recall", "planted_iou": "IoU", "planted_relevance_mass": "mass inside",
    "planted_area_share": "area share (chance)", "drop_otsu": "drop: own", "drop_planted": "drop: AU",
    "drop_random": "drop: random", "verdict": "verdict",
}


def _shown(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    out = df[[c for c in columns if c in df.columns]].rename(columns=columns)
    if "expression" in out:
        out["expression"] = [DISPLAY_NAMES.get(e, e) for e in out["expression"]]
    return out


def _sanity_lines(methods: pd.DataFrame) -> list[str]:
    lines = []
    for r in methods.itertuples(index=False):
        if r.method == "random" or not np.isfinite(getattr(r, "sanity_spearman", np.nan)):
            continue
        ok = str(getattr(r, "sanity_pass", "")).lower() == "true"
        verdict = "passes" if ok else "FAILS (its maps barely depend on the weights)"
        lines.append(f"{r.method}: Spearman {r.sanity_spearman:.3f}, SSIM {r.sanity_ssim:.3f} between the maps of "
                     f"the trained and the fully randomised model: {verdict}.")
    return lines


def _causal_lines(table: pd.DataFrame) -> list[str]:
    """The causal-check verdicts for Sadness and Happiness (the two expressions LIME misses)."""
    lines = []
    for e in ("sadness", "happiness"):
        for r in table[(table["expression"] == e) & (table["verdict"].fillna("") != "")].itertuples(index=False):
            lines.append(f"{DISPLAY_NAMES[e]}, {r.method}: replacing its Otsu region by the neutral face drops the "
                         f"class probability by {r.drop_otsu:.3f} (AU region {r.drop_planted:.3f}, random region "
                         f"{r.drop_random:.3f}; {r.otsu_in_planted:.0%} of the region on the AU regions): {r.verdict}.")
    return lines


def bench_section(bench_dir: Path, figs: Figures) -> Section:
    s = Section("bench", "Does the answer depend on the explainer?")
    methods = read_csv(bench_dir / layout.BENCH_METHODS_SUMMARY)
    if methods is None:
        return s.need(f"{rel_path(bench_dir / layout.BENCH_METHODS_SUMMARY)} not found", "fer-xai bench")
    s.add(text_block(
        "Every explanation method's total heatmaps are scored against the AU regions the synthetic generator "
        "planted (precision, IoU; relevance mass against the regions' area share). The causal check replaces a "
        "region of each explained face by the subject's neutral face and measures the drop of the explained "
        "class's probability: the method's own Otsu region against the planted AU region and a random region "
        "of equal area. 'artefact': the method's region barely matters to the model and lies off the AU regions; "
        "'partial': it lies on them but swapping it alone leaves most of the decision; 'contrastive': it matters "
        "although it lies outside the AU regions; 'planted': it matters and lies on them. Deletion/insertion: "
        "area under the class probability as the top pixels are removed/added (random pixel order as the "
        "baseline). Sanity: maps of the model with every layer re-initialised (Adebayo et al. 2018).", "hint"))
    s.add(table_block(_shown(methods, HEADLINE), digits=3,
                      caption="Per method (means over networks, faces, expressions)"))
    table = read_csv(bench_dir / layout.BENCH_TABLE)
    if table is not None and len(table):
        s.add(table_block(_shown(table, PER_EXPRESSION), digits=3,
                          caption="Methods x expressions: planted truth and the causal check"))
        for line in _causal_lines(table):
            s.add(text_block(line))
    for line in _sanity_lines(methods):
        s.add(text_block(line))
    summary = bench_dir / layout.BENCH_SUMMARY
    chance = json.loads(summary.read_text()).get("metrics", {}).get("chance", {}) if summary.is_file() else {}
    if chance:
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        s.add(text_block(f"Chance levels of the paper's metric (IoU with the Ekman masks): random superpixel weights "
                         f"on LIME's own segmentations {fmt(chance.get('random_weights_iou'))} (F1 "
                         f"{fmt(chance.get('random_weights_f1'))}); the mean heatmap over all expressions (face-shape "
                         f"prior) {fmt(chance.get('prior_iou'))}."))
    spec = read_csv(bench_dir / layout.BENCH_SPECIFICITY)
    if spec is not None and len(spec):
        s.add(table_block(_shown(spec, {"method": "method", "expression": "expression", "own_iou": "IoU own mask",
                                        "best_other": "best other mask", "best_other_iou": "IoU best other",
                                        "rank": "rank of own mask", "specific": "specific"}), digits=3,
                          caption="Specificity: does E's heatmap match E's mask better than the other five?"))
    agree = read_csv(bench_dir / layout.BENCH_AGREEMENT)
    if agree is not None and len(agree):
        s.add(table_block(agree, digits=3, caption="Against LIME: Kendall's tau of the networks' ranking by mean "
                                                    "IoU, shared best/worst networks (Table 5), dendrogram "
                                                    "cophenetic correlation"))
    png = bench_dir / layout.BENCH_FIGURE_TOTALS
    if png.is_file():
        s.add(figs.copy(png, "bench_totals", "Each method's total heatmaps side by side"))
    return s
