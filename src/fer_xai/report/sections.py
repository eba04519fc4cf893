"""The report's sections, one builder each, in the page's order. Each reads only its own inputs
and, when they are absent, says which stage to run instead of failing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import layout
from ..config import Params
from ..labels import DISPLAY_NAMES, EXPRESSION_AUS, EXPRESSIONS
from ..models.zoo import display_name
from ..paths import repo_root
from .blocks import EXPRESSION_NAMES, Section, read_csv, read_gray, rel_path, table_block, text_block, utc_now
from .figures import Figures, plot_intervals


def overview_section(params: Params, compare_dir: Path) -> Section:
    s = Section("overview", "Overview")
    s.add(text_block(
        "Convolutional networks trained to recognise the six Ekman expressions are explained with "
        "LIME; the explanations are warped into one canonical face, averaged into heatmaps and "
        "compared with the facial regions of the EMFACS action units of each expression (Ekman "
        "masks), and with each other (Gaya-Morey et al., 2024)."))
    table = read_csv(compare_dir / layout.EKMAN_TABLE)
    if table is None:
        s.add(text_block(f"Networks configured: {', '.join(display_name(m) for m in params.train.models)}; "
                         f"folds {', '.join(map(str, params.train.folds))}.", "hint"))
        return s
    avg = table[(table["expression"] == "Avg") & (table["model"] != "Avg")].sort_values("iou", ascending=False)
    by_expr = table[(table["model"] == "Avg") & (table["expression"] != "Avg")].sort_values("iou", ascending=False)
    items = [("networks compared", ", ".join(table.loc[table["model"] != "Avg", "model"].drop_duplicates()))]
    if len(avg):
        best = avg.iloc[0]
        items.append(("highest mean IoU with the masks",
                      f"{best['model']} (IoU {best['iou']:.4f}, F1 {best['f1']:.4f})"))
    if len(by_expr):
        closest, farthest = by_expr.iloc[0], by_expr.iloc[-1]
        items.append(("expression closest to its mask", f"{closest['expression']} (mean IoU {closest['iou']:.4f})"))
        items.append(("expression farthest from its mask",
                      f"{farthest['expression']} (mean IoU {farthest['iou']:.4f})"))
    s.add({"kind": "kv", "pairs": items})
    return s


def cv_section(params: Params, figs: Figures) -> Section:
    s = Section("cv", "Cross-validation accuracy per network")
    out = layout.evaluate_dir(params)
    summary = read_csv(out / layout.CV_SUMMARY)
    if summary is None:
        return s.need(f"{rel_path(out / layout.CV_SUMMARY)} not found", "fer-xai evaluate")
    s.add(text_block("Test accuracy of each network on the held-out subjects of each fold (subject-grouped "
                     f"{params.split.n_folds}-fold cross-validation), mean ± standard deviation over folds; "
                     "chance is 1/6 ≈ 0.167.", "hint"))
    shown = pd.DataFrame({"network": [display_name(m) for m in summary["model"]]})
    for col, label in (("accuracy_mean", "accuracy (mean)"), ("accuracy_std", "accuracy (SD)"),
                       ("macro_f1_mean", "macro F1 (mean)"), ("n_folds", "folds"), ("pretrained", "ImageNet weights")):
        if col in summary:
            shown[label] = summary[col].to_numpy()
    s.add(table_block(shown, digits=3))
    png = out / layout.CV_PLOT
    if png.is_file():
        s.add(figs.copy(png, "cv_accuracy", "Cross-validation accuracy (paper Figure 5)", 720))
    else:
        s.need(f"{rel_path(png)} not found", "fer-xai evaluate")
    return s


def masks_section(masks_dir: Path, figs: Figures) -> Section:
    from ..compare.published import CompareInputError, find_masks

    s = Section("masks", "Ekman masks")
    try:
        paths = find_masks(masks_dir, EXPRESSION_NAMES)
    except CompareInputError as exc:
        return s.need(str(exc), "fer-xai masks")
    masks = {e: read_gray(p) for e, p in paths.items()}
    s.add(text_block("The facial regions moved by the action units of each expression (EMFACS, paper "
                     "Table 2), drawn in the canonical face space; the ground truth the heatmaps are "
                     "compared with.", "hint"))
    rows = [{"expression": e, "action units": ", ".join(f"AU{a}" for a in EXPRESSION_AUS[e.lower()]),
             "area (share of the face space)": float((m > 127).mean()) if m is not None else np.nan}
            for e, m in masks.items()]
    s.add(table_block(pd.DataFrame(rows), digits=3))
    overview = masks_dir / layout.MASKS_OVERVIEW
    if overview.is_file():
        s.add(figs.copy(overview, "masks_overview", "Ekman masks over the canonical template"))
    elif all(m is not None for m in masks.values()):
        from ..heatmaps.figures import grid_figure

        s.add(figs.draw(lambda p: grid_figure([[masks[e] / 255.0 for e in EXPRESSION_NAMES]], ["mask"],
                                              EXPRESSION_NAMES, p, "Ekman masks", "gray"),
                        "masks", "Ekman masks (<Expression>_gt.png)"))
    return s


def heatmaps_section(hm_dir: Path, figs: Figures, cmap: str) -> Section:
    s = Section("heatmaps", "Importance heatmaps")
    if not hm_dir.is_dir():
        return s.need(f"{rel_path(hm_dir)} not found", "fer-xai heatmaps")
    s.add(text_block("Mean standardized LIME explanation per expression in the canonical face space, "
                     "histogram-stretched (paper Figures 7-9): where the networks found the evidence for "
                     "the expression they predicted.", "hint"))
    counts = read_csv(hm_dir / layout.COUNTS)
    if counts is not None and {"model", "expression", "n"} <= set(counts.columns):
        wide = counts.pivot_table(index="model", columns="expression", values="n", aggfunc="sum")
        wide = wide.reindex(columns=[e for e in EXPRESSIONS if e in wide.columns])
        wide.columns = [DISPLAY_NAMES.get(c, c) for c in wide.columns]
        wide.index = [display_name(m) for m in wide.index]
        wide.index.name = "network"
        s.add(table_block(wide.reset_index(), caption="Explanations averaged (all folds)"))
    fig_dir = hm_dir / layout.FIGURES
    total, by_net = Path(layout.FIGURE_TOTAL).stem, Path(layout.FIGURE_BY_NET).stem
    order = [total, by_net]
    found = {p.stem: p for p in sorted(fig_dir.glob("*.png"))} if fig_dir.is_dir() else {}
    captions = {total: "All networks and folds per expression", by_net: "Per network (all folds)"}
    for stem in order:
        if stem in found:
            s.add(figs.copy(found[stem], f"heatmaps_{stem}", captions[stem]))
    per_cv = layout.FIGURE_BY_CV_PREFIX
    per_fold = [figs.copy(p, f"heatmaps_{stem}", f"{stem[len(per_cv):]}: per fold")
                for stem, p in found.items() if stem.startswith(per_cv)]
    others = [figs.copy(p, f"heatmaps_{stem}", stem) for stem, p in found.items()
              if stem not in order and not stem.startswith(per_cv)]
    if per_fold or others:
        s.add({"kind": "details", "summary": f"Per-fold heatmaps and other figures ({len(per_fold) + len(others)})",
               "blocks": [b for b in per_fold + others if b]})
    if not found:
        drawn = _draw_by_net_grid(hm_dir, figs, cmap)
        if drawn is None:
            return s.need(f"no heatmap figures in {rel_path(fig_dir)} and no by_net/ heatmaps", "fer-xai heatmaps")
        s.add(drawn)
    return s


def _draw_by_net_grid(hm_dir: Path, figs: Figures, cmap: str) -> dict | None:
    from ..compare.published import CompareInputError, find_heatmaps
    from ..heatmaps.figures import grid_figure

    try:
        index = find_heatmaps(hm_dir, (layout.BY_CV, layout.BY_NET))
    except CompareInputError:
        return None
    nets = index.networks
    cells = []
    for n in nets:
        row = []
        for e in EXPRESSION_NAMES:
            path = index.by_net.get((n, e))
            img = read_gray(path) if path is not None else None
            row.append(None if img is None else img / 255.0)
        cells.append(row)
    return figs.draw(lambda p: grid_figure(cells, nets, EXPRESSION_NAMES, p, "Importance heatmaps per network", cmap),
                     "heatmaps_by_net", "Per network (drawn from by_net/ heatmaps)")


def tables_section(compare_dir: Path, figs: Figures) -> Section:
    s = Section("tables", "Agreement with the Ekman masks (paper Tables 3 and 4)")
    t34 = [(compare_dir / layout.TABLE_IOU_F1_CSV, "IoU and F1 (Table 3)"),
           (compare_dir / layout.TABLE_PRECISION_RECALL_CSV, "Precision and recall (Table 4)")]
    if not any(p.is_file() for p, _ in t34):
        return s.need(f"{rel_path(compare_dir)}/{layout.TABLE_IOU_F1_CSV} not found", "fer-xai compare")
    s.add(text_block("Each fold's heatmap is binarized with Otsu's threshold and scored against the mask "
                     "(IoU, F1, precision, recall); cells are means over folds, 'Avg. (model)' the mean "
                     "over expressions, 'Avg. (express.)' the mean over networks.", "hint"))
    for path, title in t34:
        df = read_csv(path)
        if df is None:
            s.need(f"{rel_path(path)} not found", "fer-xai compare")
            continue
        s.add(text_block(title, "heading"), table_block(df))
    avg = compare_dir / layout.barplot_name("Avg")
    if avg.is_file():
        s.add(figs.copy(avg, "barplot_Avg", "Average over expressions per network", 820))
    bars = [figs.copy(compare_dir / layout.barplot_name(e), f"barplot_{e}", e, 820)
            for e in EXPRESSION_NAMES if (compare_dir / layout.barplot_name(e)).is_file()]
    if bars:
        s.add({"kind": "details", "summary": f"Per-expression bar charts ({len(bars)})",
               "blocks": [b for b in bars if b]})
    return s


def best_worst_section(compare_dir: Path) -> Section:
    from ..compare.tables import best_worst_layout

    s = Section("best-worst", "Best and worst networks per expression (paper Table 5)")
    bw = read_csv(compare_dir / layout.BEST_WORST_CSV)
    if bw is None:
        return s.need(f"{rel_path(compare_dir / layout.BEST_WORST_CSV)} not found", "fer-xai compare")
    if not len(bw):
        return s.add(text_block("No network has a defined score.", "hint"))
    header, rows = best_worst_layout(bw)
    return s.add(table_block(pd.DataFrame(rows, columns=header)))


def dendrogram_section(compare_dir: Path, figs: Figures) -> Section:
    s = Section("dendrograms", "Similarity between networks (paper Figure 10)")
    dd = read_csv(compare_dir / layout.DENDROGRAMS_CSV)
    if dd is None:
        return s.need(f"{rel_path(compare_dir / layout.DENDROGRAMS_CSV)} not found", "fer-xai compare")
    if not len(dd):
        return s.add(text_block("Only one network: no distances or dendrograms.", "hint"))
    s.add(text_block("Distance between two networks' heatmaps of an expression: 1 - normalized correlation "
                     "coefficient; average linkage (UPGMA). The cophenetic correlation says how faithfully "
                     "each tree keeps the distances.", "hint"))
    png = compare_dir / layout.DENDROGRAMS_PNG
    if png.is_file():
        s.add(figs.copy(png, "dendrograms", "Dendrograms per expression"))
    s.add(table_block(dd, digits=3))
    return s


def threshold_free_section(compare_dir: Path, figs: Figures) -> Section:
    s = Section("threshold-free", "Threshold-free measures and confidence intervals")
    tf = read_csv(compare_dir / layout.THRESHOLD_FREE)
    boot = read_csv(compare_dir / layout.BOOTSTRAP_CI)
    if tf is None and boot is None:
        return s.need(f"{rel_path(compare_dir / layout.THRESHOLD_FREE)} not found", "fer-xai compare")
    if tf is not None and len(tf):
        s.add(text_block("Beyond the paper: the ROC AUC of heatmap values against the mask (0.5 = chance) "
                         "and the relevance mass (share of the heatmap inside the mask) with its chance "
                         "level, the mask's area share; means ± SD over folds.", "hint"))
        g = tf.groupby(["model", "expression"], sort=False)
        out = pd.DataFrame({
            "AUC": g["auc"].mean(), "AUC SD": g["auc"].std(ddof=1),
            "relevance mass": g["relevance_mass"].mean(), "relevance mass SD": g["relevance_mass"].std(ddof=1),
            "chance (mask area)": g["mask_area_share"].mean(), "lift": g["relevance_lift"].mean(),
        }).reset_index()
        s.add(table_block(out, digits=3))
    elif tf is None:
        s.need(f"{rel_path(compare_dir / layout.THRESHOLD_FREE)} not found", "fer-xai compare")
    if boot is not None and len(boot):
        unit = ", ".join(sorted(set(boot["unit"])))
        level = float(boot["level"].iloc[0])
        note = (" A resampled fold mean averages fewer distinct explanations and is noisier, so for "
                "Otsu-based scores the intervals tend to lie below the estimate (the spread, not the "
                "position, is the information)." if "image" in unit else "")
        s.add(text_block(f"Seeded percentile bootstrap {level:.0%} intervals of IoU and F1, resampling the "
                         f"{unit}s within each cell ({int(boot['n_samples'].iloc[0])} samples); the estimate "
                         f"is the table cell.{note}", "hint"))
        wide = []
        for (net, expr), grp in boot.groupby(["model", "expression"], sort=False):
            row = {"model": net, "expression": expr}
            for r in grp.itertuples():
                row[f"{r.metric.upper() if r.metric == 'iou' else r.metric.capitalize()}"] = (
                    f"{r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]")
            row["unit"] = grp["unit"].iloc[0]
            row["units"] = int(grp["n_units"].iloc[0])
            wide.append(row)
        s.add(table_block(pd.DataFrame(wide)))
        s.add(figs.draw(lambda p: plot_intervals(boot, p), "intervals",
                        f"IoU and F1 per network and expression with {level:.0%} bootstrap intervals"))
    elif boot is None:
        s.need(f"{rel_path(compare_dir / layout.BOOTSTRAP_CI)} not found", "fer-xai compare")
    return s


def planted_section(hm_dir: Path) -> Section:
    s = Section("planted", "Planted truth (synthetic data)")
    path = hm_dir / layout.PLANTED_TRUTH
    if not hm_dir.is_dir():
        return s.need(f"{rel_path(hm_dir)} not found", "fer-xai heatmaps")
    df = read_csv(path)
    if df is None:
        return s.add(text_block(f"Not available: {rel_path(path)} is written only when the prepared set has "
                                "AU-region masks (the embedded synthetic set); real datasets have none.", "hint"))
    s.add(text_block("On the synthetic faces the regions that carry each expression are known (where the "
                     "action units changed the face). Precision: the share of the Otsu-thresholded total "
                     "heatmap that lies in those planted regions.", "hint"))
    if "expression" in df:
        df = df.assign(expression=[DISPLAY_NAMES.get(str(e).lower(), e) for e in df["expression"]])
    return s.add(table_block(df, digits=3))


def pretrained_table(params: Params) -> pd.DataFrame:
    """Per configured network: the weights asked for and what each fold's training recorded."""
    rows = []
    for m in params.train.models:
        seen = []
        for k in params.train.folds:
            path = layout.train_fold_dir(params, m, k) / layout.FOLD_METRICS
            try:
                seen.append(json.loads(path.read_text()).get("pretrained"))
            except (OSError, ValueError):
                seen.append(None)
        known = [v for v in seen if v is not None]
        if not known:
            used = (f"unknown (no {rel_path(layout.train_network_dir(params, m))}/fold<k>/{layout.FOLD_METRICS}; "
                    "run `fer-xai train`)")
        elif all(bool(v) for v in known):
            used = f"yes, ImageNet ({len(known)}/{len(seen)} folds)"
        elif not any(bool(v) for v in known):
            used = f"no, random init ({len(known)}/{len(seen)} folds)"
        else:
            used = f"mixed: {sum(bool(v) for v in known)} of {len(known)} folds pretrained"
        cfg = params.train.networks[m].pretrained
        rows.append({"network": display_name(m), "model id": m, "configured": cfg, "pretrained": used})
    return pd.DataFrame(rows)


def provenance_section(params: Params, include_params: bool) -> Section:
    from importlib.metadata import PackageNotFoundError, version

    from ..provenance import data_version
    from ..redact import redact, redact_uri
    from ..tracking import git_commit, tracking_uri

    s = Section("provenance", "Provenance")
    try:
        dv = data_version(params.prepare.out_dir, params.split.out_file)
    except OSError as exc:
        dv = f"unknown ({exc})"
    try:
        ver = version("fer-xai")
    except PackageNotFoundError:
        ver = "unknown"
    lock = repo_root() / "dvc.lock"
    s.add({"kind": "kv", "pairs": [
        ("git commit", git_commit()),
        ("DVC data version (prepared faces + folds)", dv),
        ("dvc.lock", "present" if lock.is_file() else "absent (outputs not produced by `dvc repro`)"),
        ("datasets", ", ".join(d.name for d in params.data.datasets)),
        ("MLflow tracking", f"{redact_uri(tracking_uri())} (experiment {params.tracking.experiment})"),
        ("fer-xai version", ver),
        ("generated", utc_now()),
    ]})
    s.add(text_block("Pre-training of each network", "heading"), table_block(pretrained_table(params)))
    if include_params:
        import yaml

        s.add({"kind": "details", "summary": "Parameters (params.yaml as loaded, with defaults; URL passwords hidden)",
               "blocks": [text_block(yaml.safe_dump(redact(params.model_dump(mode="json")), sort_keys=False), "pre")]})
    return s

