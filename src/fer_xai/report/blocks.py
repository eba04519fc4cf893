"""What the report's sections are made of: the section itself, its text and table blocks, and
the readers that leave an unreadable input out (logged) instead of failing the page."""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import DISPLAY_NAMES, EXPRESSIONS
from ..paths import repo_root

log = logging.getLogger(__name__)

EXPRESSION_NAMES = [DISPLAY_NAMES[e] for e in EXPRESSIONS]


def rel_path(path: Path) -> str:
    try:
        return str(path.relative_to(repo_root()))
    except ValueError:
        return str(path)


def table_block(df: pd.DataFrame, index: bool = False, digits: int = 4, caption: str = "") -> dict:
    from markupsafe import Markup

    html = df.to_html(index=index, classes="data", border=0, na_rep="–", escape=True,
                      float_format=lambda v: f"{v:.{digits}f}")
    return {"kind": "table", "html": Markup(html), "caption": caption}


def text_block(text: str, kind: str = "text") -> dict:
    return {"kind": kind, "text": text}


@dataclass
class Section:
    id: str
    title: str
    blocks: list[dict] = field(default_factory=list)
    missing: bool = False

    def add(self, *blocks: dict) -> Section:
        self.blocks.extend(b for b in blocks if b)
        return self

    def need(self, what: str, run: str) -> Section:
        """A "missing: run X" note; the section is marked missing when it has nothing else."""
        self.blocks.append(text_block(f"missing: {what} — run `{run}`", "note"))
        if not any(b["kind"] in ("figure", "table") for b in self.blocks):
            self.missing = True
        return self


def read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        log.warning("%s: unreadable CSV, left out of the report (%s)", path, exc)
        return None


def read_gray(path: Path) -> np.ndarray | None:
    from ..compare.published import CompareInputError, read_map

    try:
        return read_map(path)
    except CompareInputError as exc:
        log.warning("%s", exc)
        return None


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
