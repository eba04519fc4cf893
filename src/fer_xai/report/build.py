"""The study report: one self-contained HTML page built from the other stages' outputs.

Every figure is embedded as a ``data:image/png;base64`` URI (the page needs nothing else) and
also copied to the figures folder next to it, which the captions link to. Each section reads only
its own inputs; when they are absent it says which stage to run instead of failing, so the report
can be built at any point of the pipeline.

Sections: overview, cross-validation accuracy (``evaluate``), Ekman masks (``masks``), heatmaps
(``heatmaps``), the paper's Tables 3-4, Table 5 (best/worst networks), dendrograms (Figure 10),
threshold-free measures and bootstrap intervals, planted truth (synthetic set), the explainer
bench ("Does the answer depend on the explainer?", ``bench``), provenance.

Modules: this one renders the page; :mod:`.sections` builds each section from :mod:`.blocks`
(the section, its text and tables, tolerant readers) and :mod:`.figures` (embedded PNGs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import layout
from ..config import Params
from ..paths import write_text_atomic
from .bench_section import bench_section
from .blocks import utc_now
from .figures import Figures
from .sections import (
    best_worst_section,
    cv_section,
    dendrogram_section,
    heatmaps_section,
    masks_section,
    overview_section,
    planted_section,
    provenance_section,
    tables_section,
    threshold_free_section,
)

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"


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
    from ..tracking import git_commit

    hm_dir, masks_dir, compare_dir = layout.compare_input_dirs(params)
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
        lambda: bench_section(layout.bench_dir(params), figs),
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
        "generated": utc_now(), "commit_short": commit[:10], "version": ver,
        "sections": [{"id": s.id, "title": s.title, "blocks": s.blocks, "missing": s.missing} for s in sections],
    })
    write_text_atomic(html_path, html, encoding="utf-8")
    log.info("wrote %s (%.1f MB, %d figures)", html_path, html_path.stat().st_size / 2**20, len(figs.files))
    return {"html": html_path, "figures": figs.files,
            "sections": {s.id: "missing" if s.missing else "ok" for s in sections}}
