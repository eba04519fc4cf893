"""The study report (``fer-xai report``): one self-contained HTML page plus its figures as PNGs.

:func:`~fer_xai.report.build.build_report` assembles the sections from the other stages' outputs
(a "missing: run ..." note where an input is absent; the builders are in :mod:`.sections`, the
figures in :mod:`.figures`); the page is rendered with Jinja2 from ``templates/report.html.j2``.
The stage itself is :mod:`fer_xai.stages.report`.
"""

from __future__ import annotations

from .build import build_report, render
from .figures import png_bytes_ok

__all__ = ["build_report", "png_bytes_ok", "render"]
