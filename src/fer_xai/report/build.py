"""The study report: one self-contained HTML page built from the other stages' outputs.

Every figure is embedded as a ``data:image/png;base64`` URI (the page needs nothing else) and
also copied to the figures folder next to it, which the captions link to. Each section reads only
its own inputs; when they are absent it says which stage to run instead of failing, so the report
can be built at any point of the pipeline.

Sections: overview, cross-validation accuracy (``evaluate``), Ekman masks (``masks``), heatmaps
(``heatmaps``), the paper's Tables 3-4, Table 5 (best/worst networks), dendrograms (Figure 10),
threshold-free measures and bootstrap intervals, planted truth (synthetic set), provenance.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from ..config import Params
from ..labels import DISPLAY_NAMES, EXPRESSION_AUS, EXPRESSIONS
from ..models.zoo import display_name
from ..paths import repo_root, resolve

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"
EXPRESSION_NAMES = [DISPLAY_NAMES[e] for e in EXPRESSIONS]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(repo_root()))
    except ValueError:
        return str(path)


def _table(df: pd.DataFrame, index: bool = False, digits: int = 4, caption: str = "") -> dict:
    from markupsafe import Markup

    html = df.to_html(index=index, classes="data", border=0, na_rep="–", escape=True,
                      float_format=lambda v: f"{v:.{digits}f}")
    return {"kind": "table", "html": Markup(html), "caption": caption}


def _text(text: str, kind: str = "text") -> dict:
    return {"kind": kind, "text": text}


@dataclass
class Section:
    id: str
    title: str
    blocks: list[dict] = field(default_factory=list)
    missing: bool = False

    def add(self, *blocks: dict) -> "Section":
        self.blocks.extend(b for b in blocks if b)
        return self

    def need(self, what: str, run: str) -> "Section":
        """A "missing: run X" note; the section is marked missing when it has nothing else."""
        self.blocks.append(_text(f"missing: {what} — run `{run}`", "note"))
        if not any(b["kind"] in ("figure", "table") for b in self.blocks):
            self.missing = True
        return self


class Figures:
    """PNG figures: copied or drawn into the figures folder and embedded as data URIs."""

    def __init__(self, folder: Path, link_prefix: str):
        self.folder = folder
        self.link_prefix = link_prefix  # figures folder relative to the HTML file
        self.files: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def _block(self, dest: Path, caption: str, width: int | None) -> dict:
        data = dest.read_bytes()
        if not data.startswith(PNG_SIGNATURE):
            raise ValueError(f"{dest}: not a PNG file")
        self.files.append(dest)
        return {"kind": "figure", "name": dest.stem, "caption": caption, "width": width,
                "src": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
                "file": f"{self.link_prefix}/{dest.name}"}

    def copy(self, src: Path, name: str, caption: str, width: int | None = None) -> dict | None:
        """Embed an existing image (converted to PNG if needed); None (logged) when unreadable."""
        dest = self.folder / f"{name}.png"
        try:
            if src.read_bytes()[:8] == PNG_SIGNATURE:
                shutil.copyfile(src, dest)
            else:
                with Image.open(src) as im:
                    im.save(dest, format="PNG")
        except (OSError, UnidentifiedImageError) as exc:
            log.warning("%s: unreadable figure, left out of the report (%s)", src, exc)
            return None
        return self._block(dest, f"{caption} (from {_rel(src)})", width)

    def draw(self, draw: Callable[[Path], Any], name: str, caption: str, width: int | None = None) -> dict:
        """Embed a figure drawn by ``draw(path)`` for the report."""
        dest = self.folder / f"{name}.png"
        draw(dest)
        return self._block(dest, caption, width)


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        log.warning("%s: unreadable CSV, left out of the report (%s)", path, exc)
        return None


def _gray(path: Path) -> np.ndarray | None:
    from ..compare.published import CompareInputError, read_map

    try:
        return read_map(path)
    except CompareInputError as exc:
        log.warning("%s", exc)
        return None


# --- sections ------------------------------------------------------------------------------


def overview_section(params: Params, compare_dir: Path) -> Section:
    s = Section("overview", "Overview")
    s.add(_text(
        "Convolutional networks trained to recognise the six Ekman expressions are explained with "
        "LIME; the explanations are warped into one canonical face, averaged into heatmaps and "
        "compared with the facial regions of the EMFACS action units of each expression (Ekman "
        "masks), and with each other (Gaya-Morey et al., 2024)."))
    table = _read_csv(compare_dir / "ekman_table.csv")
    if table is None:
        s.add(_text(f"Networks configured: {', '.join(display_name(m) for m in params.train.models)}; "
                    f"folds {', '.join(map(str, params.train.folds))}.", "hint"))
        return s
    avg = table[(table["expression"] == "Avg") & (table["model"] != "Avg")].sort_values("iou", ascending=False)
    by_expr = table[(table["model"] == "Avg") & (table["expression"] != "Avg")].sort_values("iou", ascending=False)
    items = [("networks compared", ", ".join(table.loc[table["model"] != "Avg", "model"].drop_duplicates()))]
    if len(avg):
        best = avg.iloc[0]
        items.append(("highest mean IoU with the masks", f"{best['model']} (IoU {best['iou']:.4f}, F1 {best['f1']:.4f})"))
    if len(by_expr):
        items.append(("expression closest to its mask", f"{by_expr.iloc[0]['expression']} (mean IoU {by_expr.iloc[0]['iou']:.4f})"))
        items.append(("expression farthest from its mask", f"{by_expr.iloc[-1]['expression']} (mean IoU {by_expr.iloc[-1]['iou']:.4f})"))
    s.add({"kind": "kv", "pairs": items})
    return s


def cv_section(params: Params, figs: Figures) -> Section:
    s = Section("cv", "Cross-validation accuracy per network")
    out = resolve(params.evaluate.out_dir)
    summary = _read_csv(out / "cv_summary.csv")
    if summary is None:
        return s.need(f"{_rel(out / 'cv_summary.csv')} not found", "fer-xai evaluate")
    s.add(_text("Test accuracy of each network on the held-out subjects of each fold (subject-grouped "
                f"{params.split.n_folds}-fold cross-validation), mean ± standard deviation over folds; "
                "chance is 1/6 ≈ 0.167.", "hint"))
    shown = pd.DataFrame({"network": [display_name(m) for m in summary["model"]]})
    for col, label in (("accuracy_mean", "accuracy (mean)"), ("accuracy_std", "accuracy (SD)"),
                       ("macro_f1_mean", "macro F1 (mean)"), ("n_folds", "folds"), ("pretrained", "ImageNet weights")):
        if col in summary:
            shown[label] = summary[col].to_numpy()
    s.add(_table(shown, digits=3))
    png = out / "cv_accuracy.png"
    if png.is_file():
        s.add(figs.copy(png, "cv_accuracy", "Cross-validation accuracy (paper Figure 5)", 720))
    else:
        s.need(f"{_rel(png)} not found", "fer-xai evaluate")
    return s


def masks_section(masks_dir: Path, figs: Figures) -> Section:
    from ..compare.published import CompareInputError, find_masks

    s = Section("masks", "Ekman masks")
    try:
        paths = find_masks(masks_dir, EXPRESSION_NAMES)
    except CompareInputError as exc:
        return s.need(str(exc), "fer-xai masks")
    masks = {e: _gray(p) for e, p in paths.items()}
    s.add(_text("The facial regions moved by the action units of each expression (EMFACS, paper "
                "Table 2), drawn in the canonical face space; the ground truth the heatmaps are "
                "compared with.", "hint"))
    rows = [{"expression": e, "action units": ", ".join(f"AU{a}" for a in EXPRESSION_AUS[e.lower()]),
             "area (share of the face space)": float((m > 127).mean()) if m is not None else np.nan}
            for e, m in masks.items()]
    s.add(_table(pd.DataFrame(rows), digits=3))
    overview = masks_dir / "overview.png"
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
        return s.need(f"{_rel(hm_dir)} not found", "fer-xai heatmaps")
    s.add(_text("Mean standardized LIME explanation per expression in the canonical face space, "
                "histogram-stretched (paper Figures 7-9): where the networks found the evidence for "
                "the expression they predicted.", "hint"))
    counts = _read_csv(hm_dir / "counts.csv")
    if counts is not None and {"model", "expression", "n"} <= set(counts.columns):
        wide = counts.pivot_table(index="model", columns="expression", values="n", aggfunc="sum")
        wide = wide.reindex(columns=[e for e in EXPRESSIONS if e in wide.columns])
        wide.columns = [DISPLAY_NAMES.get(c, c) for c in wide.columns]
        wide.index = [display_name(m) for m in wide.index]
        wide.index.name = "network"
        s.add(_table(wide.reset_index(), caption="Explanations averaged (all folds)"))
    fig_dir = hm_dir / "figures"
    order = ["total", "by_net"]
    found = {p.stem: p for p in sorted(fig_dir.glob("*.png"))} if fig_dir.is_dir() else {}
    captions = {"total": "All networks and folds per expression", "by_net": "Per network (all folds)"}
    for stem in order:
        if stem in found:
            s.add(figs.copy(found[stem], f"heatmaps_{stem}", captions[stem]))
    per_fold = [figs.copy(p, f"heatmaps_{stem}", f"{stem[len('by_cv_'):]}: per fold")
                for stem, p in found.items() if stem.startswith("by_cv_")]
    others = [figs.copy(p, f"heatmaps_{stem}", stem) for stem, p in found.items()
              if stem not in order and not stem.startswith("by_cv_")]
    if per_fold or others:
        s.add({"kind": "details", "summary": f"Per-fold heatmaps and other figures ({len(per_fold) + len(others)})",
               "blocks": [b for b in per_fold + others if b]})
    if not found:
        drawn = _draw_by_net_grid(hm_dir, figs, cmap)
        if drawn is None:
            return s.need(f"no heatmap figures in {_rel(fig_dir)} and no by_net/ heatmaps", "fer-xai heatmaps")
        s.add(drawn)
    return s


def _draw_by_net_grid(hm_dir: Path, figs: Figures, cmap: str) -> dict | None:
    from ..compare.published import CompareInputError, find_heatmaps
    from ..heatmaps.figures import grid_figure

    try:
        index = find_heatmaps(hm_dir, ("by_cv", "by_net"))
    except CompareInputError:
        return None
    nets = index.networks
    cells = []
    for n in nets:
        row = []
        for e in EXPRESSION_NAMES:
            path = index.by_net.get((n, e))
            img = _gray(path) if path is not None else None
            row.append(None if img is None else img / 255.0)
        cells.append(row)
    return figs.draw(lambda p: grid_figure(cells, nets, EXPRESSION_NAMES, p, "Importance heatmaps per network", cmap),
                     "heatmaps_by_net", "Per network (drawn from by_net/ heatmaps)")


def tables_section(compare_dir: Path, figs: Figures) -> Section:
    s = Section("tables", "Agreement with the Ekman masks (paper Tables 3 and 4)")
    t34 = [(compare_dir / "table_iou_f1.csv", "IoU and F1 (Table 3)"),
           (compare_dir / "table_precision_recall.csv", "Precision and recall (Table 4)")]
    if not any(p.is_file() for p, _ in t34):
        return s.need(f"{_rel(compare_dir)}/table_iou_f1.csv not found", "fer-xai compare")
    s.add(_text("Each fold's heatmap is binarized with Otsu's threshold and scored against the mask "
                "(IoU, F1, precision, recall); cells are means over folds, 'Avg. (model)' the mean "
                "over expressions, 'Avg. (express.)' the mean over networks.", "hint"))
    for path, title in t34:
        df = _read_csv(path)
        if df is None:
            s.need(f"{_rel(path)} not found", "fer-xai compare")
            continue
        s.add(_text(title, "heading"), _table(df))
    avg = compare_dir / "barplot_Avg.png"
    if avg.is_file():
        s.add(figs.copy(avg, "barplot_Avg", "Average over expressions per network", 820))
    bars = [figs.copy(compare_dir / f"barplot_{e}.png", f"barplot_{e}", e, 820)
            for e in EXPRESSION_NAMES if (compare_dir / f"barplot_{e}.png").is_file()]
    if bars:
        s.add({"kind": "details", "summary": f"Per-expression bar charts ({len(bars)})", "blocks": [b for b in bars if b]})
    return s


def best_worst_section(compare_dir: Path) -> Section:
    from ..compare.tables import best_worst_layout

    s = Section("best-worst", "Best and worst networks per expression (paper Table 5)")
    bw = _read_csv(compare_dir / "best_worst.csv")
    if bw is None:
        return s.need(f"{_rel(compare_dir / 'best_worst.csv')} not found", "fer-xai compare")
    if not len(bw):
        return s.add(_text("No network has a defined score.", "hint"))
    header, rows = best_worst_layout(bw)
    return s.add(_table(pd.DataFrame(rows, columns=header)))


def dendrogram_section(compare_dir: Path, figs: Figures) -> Section:
    s = Section("dendrograms", "Similarity between networks (paper Figure 10)")
    dd = _read_csv(compare_dir / "dendrograms.csv")
    if dd is None:
        return s.need(f"{_rel(compare_dir / 'dendrograms.csv')} not found", "fer-xai compare")
    if not len(dd):
        return s.add(_text("Only one network: no distances or dendrograms.", "hint"))
    s.add(_text("Distance between two networks' heatmaps of an expression: 1 - normalized correlation "
                "coefficient; average linkage (UPGMA). The cophenetic correlation says how faithfully "
                "each tree keeps the distances.", "hint"))
    png = compare_dir / "dendrograms.png"
    if png.is_file():
        s.add(figs.copy(png, "dendrograms", "Dendrograms per expression"))
    s.add(_table(dd, digits=3))
    return s


def threshold_free_section(compare_dir: Path, figs: Figures) -> Section:
    s = Section("threshold-free", "Threshold-free measures and confidence intervals")
    tf = _read_csv(compare_dir / "threshold_free.csv")
    boot = _read_csv(compare_dir / "bootstrap_ci.csv")
    if tf is None and boot is None:
        return s.need(f"{_rel(compare_dir / 'threshold_free.csv')} not found", "fer-xai compare")
    if tf is not None and len(tf):
        s.add(_text("Beyond the paper: the ROC AUC of heatmap values against the mask (0.5 = chance) "
                    "and the relevance mass (share of the heatmap inside the mask) with its chance "
                    "level, the mask's area share; means ± SD over folds.", "hint"))
        g = tf.groupby(["model", "expression"], sort=False)
        out = pd.DataFrame({
            "AUC": g["auc"].mean(), "AUC SD": g["auc"].std(ddof=1),
            "relevance mass": g["relevance_mass"].mean(), "relevance mass SD": g["relevance_mass"].std(ddof=1),
            "chance (mask area)": g["mask_area_share"].mean(), "lift": g["relevance_lift"].mean(),
        }).reset_index()
        s.add(_table(out, digits=3))
    elif tf is None:
        s.need(f"{_rel(compare_dir / 'threshold_free.csv')} not found", "fer-xai compare")
    if boot is not None and len(boot):
        unit = ", ".join(sorted(set(boot["unit"])))
        level = float(boot["level"].iloc[0])
        note = (" A resampled fold mean averages fewer distinct explanations and is noisier, so for "
                "Otsu-based scores the intervals tend to lie below the estimate (the spread, not the "
                "position, is the information)." if "image" in unit else "")
        s.add(_text(f"Seeded percentile bootstrap {level:.0%} intervals of IoU and F1, resampling the "
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
        s.add(_table(pd.DataFrame(wide)))
        s.add(figs.draw(lambda p: plot_intervals(boot, p), "intervals",
                        f"IoU and F1 per network and expression with {level:.0%} bootstrap intervals"))
    elif boot is None:
        s.need(f"{_rel(compare_dir / 'bootstrap_ci.csv')} not found", "fer-xai compare")
    return s


def plot_intervals(boot: pd.DataFrame, path: Path) -> Path:
    """Point estimates with their bootstrap intervals, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(boot["metric"]))
    nets = list(dict.fromkeys(boot["model"]))
    exprs = list(dict.fromkeys(boot["expression"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), dpi=110, squeeze=False)
    width = 0.8 / max(1, len(nets))
    for ax, metric in zip(axes[0], metrics):
        sub = boot[boot["metric"] == metric]
        for i, net in enumerate(nets):
            cell = sub[sub["model"] == net].set_index("expression").reindex(exprs)
            x = np.arange(len(exprs)) + (i - (len(nets) - 1) / 2) * width
            est = cell["estimate"].to_numpy(float)
            err = np.vstack([est - cell["ci_low"].to_numpy(float), cell["ci_high"].to_numpy(float) - est])
            ax.errorbar(x, est, yerr=np.clip(np.nan_to_num(err), 0, None), fmt="o", ms=4, capsize=2, label=net)
        ax.set_xticks(np.arange(len(exprs)), exprs, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_ylim(0, 1)
        ax.set_title("IoU" if metric == "iou" else metric.upper() if len(metric) <= 2 else metric)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def planted_section(hm_dir: Path) -> Section:
    s = Section("planted", "Planted truth (synthetic data)")
    path = hm_dir / "planted_truth.csv"
    if not hm_dir.is_dir():
        return s.need(f"{_rel(hm_dir)} not found", "fer-xai heatmaps")
    df = _read_csv(path)
    if df is None:
        return s.add(_text(f"Not available: {_rel(path)} is written only when the prepared set has "
                           "AU-region masks (the embedded synthetic set); real datasets have none.", "hint"))
    s.add(_text("On the synthetic faces the regions that carry each expression are known (where the "
                "action units changed the face). Precision: the share of the Otsu-thresholded total "
                "heatmap that lies in those planted regions.", "hint"))
    if "expression" in df:
        df = df.assign(expression=[DISPLAY_NAMES.get(str(e).lower(), e) for e in df["expression"]])
    return s.add(_table(df, digits=3))


def pretrained_table(params: Params) -> pd.DataFrame:
    """Per configured network: the weights asked for and what each fold's training recorded."""
    rows = []
    for m in params.train.models:
        seen = []
        for k in params.train.folds:
            path = resolve(params.train.out_dir) / m / f"fold{k}" / "metrics.json"
            try:
                seen.append(json.loads(path.read_text()).get("pretrained"))
            except (OSError, ValueError):
                seen.append(None)
        known = [v for v in seen if v is not None]
        if not known:
            used = f"unknown (no {_rel(resolve(params.train.out_dir) / m)}/fold<k>/metrics.json; run `fer-xai train`)"
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
        ("generated", _now()),
    ]})
    s.add(_text("Pre-training of each network", "heading"), _table(pretrained_table(params)))
    if include_params:
        import yaml

        s.add({"kind": "details", "summary": "Parameters (params.yaml as loaded, with defaults; URL passwords hidden)",
               "blocks": [_text(yaml.safe_dump(redact(params.model_dump(mode="json")), sort_keys=False), "pre")]})
    return s


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --- the page ------------------------------------------------------------------------------


def render(context: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(**context)


def build_report(params: Params, html_path: Path, figures_dir: Path, link_prefix: str) -> dict[str, Any]:
    """Build every section, write the figures into ``figures_dir`` and the page to ``html_path``.

    ``link_prefix``: ``figures_dir`` as the page links to it (relative to the page's folder).
    Returns ``{"html": path, "figures": [paths], "sections": {id: "ok" | "missing"}}``.
    """
    from ..stages.compare import pipeline_dirs
    from ..tracking import git_commit

    hm_dir, masks_dir, compare_dir = pipeline_dirs(params)
    figs = Figures(figures_dir, link_prefix)
    rp = params.report
    builders = [
        lambda: overview_section(params, compare_dir),
        lambda: cv_section(params, figs),
        lambda: masks_section(masks_dir, figs),
        lambda: heatmaps_section(hm_dir, figs, rp.heatmap_colormap),
        lambda: tables_section(compare_dir, figs),
        lambda: best_worst_section(compare_dir),
        lambda: dendrogram_section(compare_dir, figs),
        lambda: threshold_free_section(compare_dir, figs),
        lambda: planted_section(hm_dir),
        lambda: provenance_section(params, rp.include_params),
    ]
    sections = []
    for make in builders:
        sec = make()
        log.info("report section %-15s %s", sec.id, "missing inputs" if sec.missing else f"{len(sec.blocks)} blocks")
        sections.append(sec)
    commit = git_commit()
    try:
        from importlib.metadata import version

        ver = version("fer-xai")
    except Exception:  # noqa: BLE001 - a version string only
        ver = "unknown"
    html = render({
        "title": rp.title,
        "subtitle": "Do facial-expression networks look where humans look? LIME heatmaps vs. Ekman masks "
                    "(Gaya-Morey et al., 2024), reproduced with fer-xai.",
        "generated": _now(), "commit_short": commit[:10], "version": ver,
        "sections": [{"id": s.id, "title": s.title, "blocks": s.blocks, "missing": s.missing} for s in sections],
    })
    html_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(html_path)
    log.info("wrote %s (%.1f MB, %d figures)", html_path, html_path.stat().st_size / 2**20, len(figs.files))
    return {"html": html_path, "figures": figs.files,
            "sections": {s.id: "missing" if s.missing else "ok" for s in sections}}


def png_bytes_ok(data: bytes) -> bool:
    """True when ``data`` is a PNG that PIL can decode."""
    if not data.startswith(PNG_SIGNATURE):
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        return True
    except (OSError, UnidentifiedImageError, SyntaxError):
        return False
